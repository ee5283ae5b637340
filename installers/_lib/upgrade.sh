# shellcheck shell=bash
# provision-tui catalog library: the upgrade of an installer's Debian packages (needs apt.sh).
# upgrade_packages NAME UNIT CHECK PKG...: the newest packages (security and point releases), a
# restart of UNIT when something was upgraded, then CHECK (a command) must pass within 30 s.
# The configuration is left alone.
upgrade_packages() {
  local name=$1 unit=$2 check=$3 p ok=false before after
  shift 3
  local installed=()
  for p in "$@"; do
    pkg_installed "$p" && installed+=("$p")
  done
  [ "${#installed[@]}" -gt 0 ] || fail 1 "$name is not installed here; install it first"
  apt_prepare
  apt_get update -q || fail 2 "apt-get update failed"
  before=$(dpkg-query -W -f='${Package} ${Version}\n' "${installed[@]}")
  apt_get install -y -q --only-upgrade -o Dpkg::Options::=--force-confold "${installed[@]}" || fail 2 "apt-get upgrade of ${installed[*]} failed"
  after=$(dpkg-query -W -f='${Package} ${Version}\n' "${installed[@]}")
  if [ "$before" != "$after" ]; then
    echo "upgraded:"; diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed -n 's/^> /  /p'
    systemctl restart "$unit" || fail 3 "$unit did not restart after the upgrade"
  else
    echo "$name is already the newest version"
  fi
  for _ in $(seq 1 30); do
    if "$check"; then ok=true; break; fi
    sleep 1
  done
  [ "$ok" = true ] || fail 3 "$name does not work after the upgrade"
  echo "$name upgrade done"
}
