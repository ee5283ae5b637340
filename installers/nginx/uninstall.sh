#!/usr/bin/env bash
# nginx: remove nginx, the provision-tui site, page and certificates.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh

if systemctl list-unit-files nginx.service >/dev/null 2>&1; then systemctl disable --now nginx 2>/dev/null || true; fi
pkgs=()
for p in nginx nginx-common nginx-core nginx-light nginx-full nginx-extras libnginx-mod-http-geoip libnginx-mod-stream; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ir]' && pkgs+=("$p")
done
if [ "${#pkgs[@]}" -gt 0 ]; then
  apt_get purge -y -q "${pkgs[@]}" || fail 2 "apt-get purge ${pkgs[*]} failed"
  apt_get autoremove -y -q --purge || true
fi
rm -rf /var/www/provision-tui /etc/nginx/sites-available/provision-tui /etc/nginx/sites-enabled/provision-tui
rm -f /etc/ssl/provision-tui/nginx.crt /etc/ssl/provision-tui/nginx.key /etc/ssl/provision-tui/nginx.self-signed
rmdir /etc/ssl/provision-tui 2>/dev/null || true
echo "nginx removed"
