#!/usr/bin/env bash
# caddy: remove Caddy, its configuration and its certificates.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
if dpkg-query -W -f='${db:Status-Abbrev}' caddy 2>/dev/null | grep -q '^[ir]'; then
  systemctl stop caddy 2>/dev/null || true
  apt_get purge -y -q caddy || fail 2 "apt-get purge caddy failed"
  apt_get autoremove -y -q --purge || true
fi
rm -rf /etc/caddy /var/lib/caddy
echo "caddy removed"
