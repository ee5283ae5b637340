#!/usr/bin/env bash
# caddy: remove Caddy, its configuration and its certificates.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
fail() { local code=$1; shift; printf 'error: %s\n' "$*" >&2; exit "$code"; }
if dpkg-query -W -f='${db:Status-Abbrev}' caddy 2>/dev/null | grep -q '^[ir]'; then
  systemctl stop caddy 2>/dev/null || true
  apt-get purge -y -q caddy || fail 2 "apt-get purge caddy failed"
  apt-get autoremove -y -q --purge || true
fi
rm -rf /etc/caddy /var/lib/caddy
echo "caddy removed"
