# shellcheck shell=bash
# provision-tui catalog library: the helpers every apt-based installer shares. An installer gets
# it with the line `# ptui:include apt.sh`, which the catalog replaces by this file's text before
# the script is sent, so the script stays self-contained on the server.

fail() { local code=$1; shift; printf 'error: %s\n' "$*" >&2; exit "$code"; }
put() {   # put PATH MODE CONTENT: write only when different; returns 0 when the file changed
  local c; c=$(printf '%s' "$3")
  if [ -f "$1" ] && [ "$(cat "$1")" = "$c" ]; then chmod "$2" "$1"; return 1; fi
  install -d -m 0755 "$(dirname "$1")"
  (umask 077; printf '%s\n' "$c" > "$1.ptui-new")
  chmod "$2" "$1.ptui-new"; mv -f "$1.ptui-new" "$1"
}

# How long to wait for another apt/dpkg (unattended-upgrades, a cancelled job's leftovers, an
# operator) before giving up with exit 2.
apt_lock_wait_seconds=300
apt_install_opts=()   # e.g. (--no-install-recommends), set by the installer before pkg_install

apt_lock_holder() {   # prints "PID COMMAND" of a process holding a dpkg/apt lock, else nothing
  local f ino pid
  for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
    [ -e "$f" ] || continue
    ino=$(stat -c %i "$f")
    # apt and dpkg take fcntl locks: /proc/locks names the holder (waiters are marked "->")
    pid=$(awk -v ino="$ino" '!/->/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) { n = split($i, p, ":"); if (p[n] == ino) { print $(i - 1); exit } } }' /proc/locks)
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
      printf '%s %s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-120)"
      return 0
    fi
  done
}
apt_wait_locks() {   # waits (bounded) until no process holds a dpkg/apt lock
  local waited=0 holder
  while holder=$(apt_lock_holder) && [ -n "$holder" ]; do
    [ "$waited" -ge "$apt_lock_wait_seconds" ] &&
      fail 2 "the package manager is still busy after ${apt_lock_wait_seconds}s (held by pid $holder); let it finish, then run this again"
    if [ $((waited % 10)) -eq 0 ]; then
      echo "waiting for the package manager: pid $holder holds the dpkg/apt lock (${waited}s of ${apt_lock_wait_seconds}s)"
    fi
    sleep 1; waited=$((waited + 1))
  done
}
# A cancel sends TERM to the job's process group, then KILL after the manifest's
# cancel_grace_seconds. apt-get ignores that TERM (dpkg killed midway leaves the server needing a
# repair), and the script stops as soon as the running step is done: bash runs this trap only
# once its foreground command has ended.
trap 'echo "cancelled: stopping after the running step" >&2; exit 143' TERM
apt_get() {   # apt-get once dpkg is sound and the locks are free (apt waits 60 s more itself)
  apt_prepare
  apt_wait_locks
  (trap '' TERM; exec apt-get -o DPkg::Lock::Timeout=60 "$@")
}
apt_repaired=false
apt_prepare() {   # once per run: wait for the locks, then finish what an interrupted dpkg left
  [ "$apt_repaired" = true ] && return 0
  apt_repaired=true
  apt_wait_locks
  if [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ] || [ -n "$(dpkg --audit 2>/dev/null)" ]; then
    echo "an earlier dpkg run was interrupted: repairing (dpkg --configure -a, apt-get -f install)"
    dpkg --force-confold --configure -a || fail 2 "dpkg --configure -a failed; run it on the server and read its errors"
    apt_get -f install -y -q -o Dpkg::Options::=--force-confold || fail 2 "apt-get -f install failed; run it on the server and read its errors"
  fi
}
apt_ready() {   # package lists fresh enough (6 h), dpkg consistent
  apt_prepare
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -360 2>/dev/null | head -n1)" ]; then
    apt_get update -q || fail 2 "apt-get update failed"
  fi
}
pkg_installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
pkg_install() {   # pkg_install PKG...: installs only the missing ones
  local missing=() p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  apt_ready
  echo "installing ${missing[*]}"
  apt_get install -y -q "${apt_install_opts[@]}" -o Dpkg::Options::=--force-confold "${missing[@]}" || fail 2 "apt-get install ${missing[*]} failed"
}
