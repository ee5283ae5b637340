#!/usr/bin/env bash
# docker upgrade: the newest Debian packages of docker (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
# ptui:include upgrade.sh

works() { docker info >/dev/null 2>&1; }
upgrade_packages docker docker works docker.io containerd runc docker-compose
