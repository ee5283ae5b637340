#!/usr/bin/env bash
# node-exporter: remove prometheus-node-exporter and its configuration.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
if dpkg-query -W -f='${db:Status-Abbrev}' prometheus-node-exporter 2>/dev/null | grep -q '^[ir]'; then
  systemctl stop prometheus-node-exporter 2>/dev/null || true
  apt_get purge -y -q prometheus-node-exporter || fail 2 "apt-get purge prometheus-node-exporter failed"
  apt_get autoremove -y -q --purge || true
fi
rm -f /etc/provision-tui/node-exporter.url /etc/default/prometheus-node-exporter
rmdir /etc/provision-tui 2>/dev/null || true
echo "node-exporter removed"
