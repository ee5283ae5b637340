#!/usr/bin/env bash
# Run one installer script directly over ssh, the way provision-tui runs it (env vars, stdin=/dev/null,
# `timeout`, `bash -c SCRIPT NAME`, in the login user's home). For authoring only: values are passed on
# the ssh command line, so never use real secrets here.
#   tests/lab/try.sh SERVER_NUMBER INSTALLER [install|uninstall|upgrade] [KEY=VALUE]...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:?server number}; id=${2:?installer id}; action=${3:-install}; shift 3 || shift $#
dir=$here/../../installers/$id
script=$dir/$action.sh
[ -f "$script" ] || { echo "no $script" >&2; exit 2; }
envs=(PROVISION_TUI_JOB_ID=0 "PROVISION_TUI_SERVER=h$n" "PROVISION_TUI_ACTION=$action")
for kv in "$@"; do k=${kv%%=*}; envs+=("${k^^}=${kv#*=}"); done
remote=$(printf '%q ' env "${envs[@]}")
set +e
# `# ptui:include NAME` lines become installers/_lib/NAME, as the catalog assembles the script
awk -v lib="$here/../../installers/_lib" '/^# ptui:include /{ f = lib "/" $3; while ((getline l < f) > 0) print l; close(f); next } { print }' "$script" |
  "$here/lab.sh" ssh "$n" "s=\$(cat); $remote timeout -k 30 1800 bash -c \"\$s\" $(printf '%q' "$id/$action.sh") </dev/null"
rc=$?
echo "== $id $action exit $rc" >&2
exit $rc
