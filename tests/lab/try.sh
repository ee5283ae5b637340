#!/usr/bin/env bash
# Run one installer script directly over ssh, the way provision-tui runs it (private dir, env vars,
# stdin=/dev/null, setsid+timeout). For authoring only: values are passed on the ssh command line.
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
"$here/lab.sh" ssh "$n" 'umask 077; d=$(mktemp -d /tmp/provision-tui.XXXXXXXXXX); cat > "$d/run.sh"; chmod 700 "$d/run.sh"; echo "$d" > /tmp/.ptui-last' < "$script"
set +e
"$here/lab.sh" ssh "$n" "cd \$(cat /tmp/.ptui-last) && $remote setsid -w timeout -k 30 1800 ./run.sh </dev/null; rc=\$?; rm -rf \$(cat /tmp/.ptui-last); exit \$rc"
rc=$?
echo "== $id $action exit $rc" >&2
exit $rc
