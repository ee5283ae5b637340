#!/usr/bin/env bash
# caddy upgrade: the newest Debian packages of caddy (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { systemctl is-active --quiet caddy; }
upgrade_packages caddy caddy works caddy
