#!/usr/bin/env bash
# mariadb upgrade: the newest Debian packages of mariadb (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { mariadb-admin --protocol=socket ping >/dev/null 2>&1; }
upgrade_packages mariadb mariadb works mariadb-server mariadb-client
