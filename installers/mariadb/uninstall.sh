#!/usr/bin/env bash
# mariadb: remove MariaDB and ALL its databases.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
mapfile -t pkgs < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'mariadb*' 'mysql*' 'galera*' 2>/dev/null | awk '/^[ir]/{print $2}')
if [ "${#pkgs[@]}" -gt 0 ]; then
  systemctl stop mariadb 2>/dev/null || true
  apt_get purge -y -q "${pkgs[@]}" || fail 2 "apt-get purge ${pkgs[*]} failed"
  apt_get autoremove -y -q --purge || true
fi
rm -rf /etc/mysql /var/lib/mysql /var/log/mysql
echo "mariadb removed"
