#!/usr/bin/env bash
# postgresql upgrade: the newest Debian packages of postgresql (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { runuser -u postgres -- psql -XAtc 'select 1' >/dev/null 2>&1; }
upgrade_packages postgresql postgresql works postgresql postgresql-15 postgresql-client-15 postgresql-common
