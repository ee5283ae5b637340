#!/usr/bin/env bash
# redis: remove redis-server, its data and the provision-tui configuration.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
pkgs=()
for p in redis-server redis-tools redis; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ir]' && pkgs+=("$p")
done
if [ "${#pkgs[@]}" -gt 0 ]; then
  systemctl stop redis-server 2>/dev/null || true
  apt_get purge -y -q "${pkgs[@]}" || fail 2 "apt-get purge ${pkgs[*]} failed"
  apt_get autoremove -y -q --purge || true
fi
rm -rf /etc/redis /var/lib/redis /var/log/redis
echo "redis removed"
