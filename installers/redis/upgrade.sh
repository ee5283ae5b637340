#!/usr/bin/env bash
# redis upgrade: the newest Debian packages of redis (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { systemctl is-active --quiet redis-server; }
upgrade_packages redis redis-server works redis-server redis-tools
