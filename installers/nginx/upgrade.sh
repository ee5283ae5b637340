#!/usr/bin/env bash
# nginx upgrade: the newest Debian packages of nginx (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { curl -fs -o /dev/null http://127.0.0.1/; }
upgrade_packages nginx nginx works nginx nginx-common
