
# provision-tui's configuration guard (docs/INSTALLERS.md, "Configuration and rollback"). The
# engine puts the assignments above: G_APP, G_GEN (this job's copy), G_PATHS, G_SERVICES,
# G_KEEP, G_SETTLE, G_SNAPSHOT (1: the app is deployed, keep a copy first), G_RESTORE (a rollback: the
# copy to go back to), G_HEALTH (1: g_health is the manifest's check), G_INTERP, G_NAME and
# G_SCRIPT (the installer's script, run as a child with the job's environment).
# Copies live in /var/backups/provision-tui/config/APP/jNNNNNNNNNNNN (root only: 0700), one
# per job that kept one.
# shellcheck shell=bash disable=SC2154
set -u
G_BASE=/var/backups/provision-tui
G_ROOT=$G_BASE/config
G_DIR=$G_ROOT/$G_APP
g_term=0
trap 'g_term=1' TERM INT HUP
g_say() { printf 'provision-tui: %s\n' "$*" >&2; }

g_keep() {
  local tmp="$G_DIR/.$G_GEN.tmp" p n=0
  mkdir -p -- "$G_DIR" && chmod 0700 -- "$G_BASE" "$G_ROOT" "$G_DIR" || return 1
  rm -rf -- "$tmp" "${G_DIR:?}/$G_GEN" && mkdir -m 0700 -- "$tmp" || return 1
  : >"$tmp/list" && : >"$tmp/absent" || return 1
  for p in "${G_PATHS[@]}"; do
    if [ -e "$p" ] || [ -L "$p" ]; then
      printf '%s\0' "$p" >>"$tmp/list"
      n=$((n + 1))
    else
      printf '%s\n' "$p" >>"$tmp/absent"
    fi
  done
  tar --create --file "$tmp/config.tar" --absolute-names --numeric-owner --null --files-from "$tmp/list" || return 1
  mv -T -- "$tmp" "$G_DIR/$G_GEN" || return 1
  g_say "kept a copy of the configuration of $G_APP ($n of ${#G_PATHS[@]} declared paths exist) in $G_DIR/$G_GEN"
}

g_restart() {
  local u
  [ ${#G_SERVICES[@]} -gt 0 ] || return 0
  if ! command -v systemctl >/dev/null; then
    g_say "no systemctl on this server: ${G_SERVICES[*]} not restarted"
    return 0
  fi
  # A restored unit file takes effect only after a reload.
  systemctl daemon-reload || true
  for u in "${G_SERVICES[@]}"; do
    if ! systemctl cat -- "$u" >/dev/null 2>&1; then
      g_say "$u is not installed here: not restarted"
      continue
    fi
    systemctl restart "$u" || { g_say "systemctl restart $u failed"; return 1; }
    g_say "restarted $u"
  done
}

# Puts copy $1 back: every declared path is removed (what the failed run created too), then
# the copy is unpacked with its owners and modes; the service restarts.
g_restore() {
  local from=$1 p
  [ -f "$from/config.tar" ] || { g_say "no configuration copy in $from"; return 1; }
  for p in "${G_PATHS[@]}"; do rm -rf -- "$p" || return 1; done
  tar --extract --file "$from/config.tar" --absolute-names --preserve-permissions --same-owner --numeric-owner || return 1
  g_say "restored the configuration of $G_APP from $from"
  g_restart
}

# The health check, retried for up to G_SETTLE s (a restarted service takes a moment).
g_healthy() {
  [ "$G_HEALTH" = 1 ] || return 0
  local until=$((SECONDS + G_SETTLE))
  while :; do
    g_health && return 0
    [ $SECONDS -ge $until ] && return 1
    sleep 1
  done
}

g_prune() {
  local -a all=()
  local e i
  for e in "$G_DIR"/j*; do [ -d "$e" ] && all+=("$e"); done
  for ((i = 0; i < ${#all[@]} - G_KEEP; i++)); do rm -rf -- "${all[i]}"; done
}

if [ "$G_SNAPSHOT" = 1 ]; then
  g_keep || { g_say "cannot keep a copy of the configuration of $G_APP in $G_DIR (disk full?); nothing was run"; exit 3; }
fi
if [ -n "$G_RESTORE" ]; then
  if [ -f "$G_DIR/$G_RESTORE/config.tar" ]; then
    g_restore "$G_DIR/$G_RESTORE" || g_say "going back to $G_DIR/$G_RESTORE failed; the install script runs with the earlier inputs"
  else
    g_say "the configuration copy of that deployment ($G_DIR/$G_RESTORE) is not on this server (pruned or removed); the install script alone writes the configuration from the earlier inputs"
  fi
fi
"${G_INTERP[@]}" -c "$G_SCRIPT" "$G_NAME" </dev/null
rc=$?
why=
if [ $rc != 0 ] || [ $g_term = 1 ]; then
  why="the run ended with exit status $rc"
elif ! g_healthy; then
  why="the run succeeded but the health check of $G_APP fails right after it"
  rc=3
fi
if [ -z "$why" ]; then
  if [ "$G_SNAPSHOT" = 1 ]; then
    # A rollback consumed the copy it went back to; its own copy is of a deployment it left.
    [ -n "$G_RESTORE" ] && rm -rf -- "${G_DIR:?}/$G_RESTORE" "${G_DIR:?}/$G_GEN"
    g_prune
  fi
  exit 0
fi
if [ $rc = 1 ] && [ $g_term = 0 ] && [ -z "$G_RESTORE" ]; then
  # Exit 1: the installer refused its inputs before it changed anything (the script contract).
  [ "$G_SNAPSHOT" = 1 ] && rm -rf -- "${G_DIR:?}/$G_GEN"
  exit 1
fi
if [ "$G_SNAPSHOT" != 1 ]; then
  g_say "$why; no configuration was kept before it (the app was not deployed here), so nothing is restored"
  exit $rc
fi
g_say "$why: restoring the configuration kept before it"
if g_restore "$G_DIR/$G_GEN"; then
  if g_healthy; then
    # The live configuration is this copy again: the previous copies stay for rollbacks.
    rm -rf -- "${G_DIR:?}/$G_GEN"
    if [ "$G_HEALTH" = 1 ]; then state="its health check passes"; else state="it declares no health check"; fi
    g_say "rolled back: $G_APP runs with the configuration it had before this run (restarted: ${G_SERVICES[*]:-none}); $state"
    exit $rc
  fi
  g_say "the restored configuration does not pass the health check of $G_APP either; the copy stays in $G_DIR/$G_GEN"
else
  g_say "restoring $G_DIR/$G_GEN failed; the copy stays there"
fi
exit $rc
