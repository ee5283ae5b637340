#!/usr/bin/env bash
# node-exporter upgrade: the newest Debian package (security and point releases), a restart when
# it was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { curl -fsS -m 5 "$(cat /etc/provision-tui/node-exporter.url)" | grep -q '^node_exporter_build_info'; }
upgrade_packages node-exporter prometheus-node-exporter works prometheus-node-exporter
