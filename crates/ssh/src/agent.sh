# provision-tui's job agent. Sent on stdin and run by `bash --norc -c 'read code; eval'`, as
# the login user or through sudo; $1 is the login user's home (expanded before sudo). Every
# request field is a NUL-terminated record on stdin: nothing reaches argv or the disk except
# the script (argv of the interpreter, as with `ssh host cmd`) and the job's own output.
#
# A job's spool is KEY.* in the private directory ~/.local/state/provision-tui/jobs (0700,
# files 0600, owned by the login user). Its supervisor runs in the background of this agent;
# no pty is asked for, so no SIGHUP comes, and the output goes through `tee -p`, which outlives
# a closed channel: the job survives the connection and the client. Its output goes into the
# spool (KEY.out, KEY.err) and, while a client is attached, to this channel. Files: KEY.sup
# (supervisor pid), KEY.pid (the process group of `timeout` and the installer), KEY.boot (boot
# id), KEY.rc (exit status), KEY.ended (all output written). The end is told by a record that cannot occur in output by chance:
#   NUL "__PTUI_END_" KEY " " STATE " " RC LF
# STATE is ended, gone (no spool) or lost (the supervisor died without an exit status: the
# server rebooted or it was killed). After it the client stores everything it got and sends
# "rm" on stdin; then the spool is removed.
# shellcheck shell=bash disable=SC2034,SC2154,SC2317,SC2015,SC2016
set -u
umask 077
h=$1
rec() { IFS= read -r -d "" "$1" || { echo "provision-tui: truncated request on stdin" >&2; exit 3; }; }
rec mode
rec key
case $key in *[!a-z0-9-]* | "") echo "provision-tui: bad spool key" >&2; exit 3 ;; esac
base="$h/.local/state/provision-tui/jobs"
d="$base/$key"

# Under sudo the files belong to the login user, so that following and removing need no sudo.
own() { if [ -n "${SUDO_UID:-}" ]; then chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$@"; fi; }
# Many jobs of one login start at once: `mkdir -p` does not mind a directory made meanwhile.
# Under sudo, the directories root made are given to the login user.
mkbase() {
  [ -d "$base" ] && return 0
  mkdir -p -- "$base" 2>/dev/null || [ -d "$base" ] || return 1
  local p
  if [ -n "${SUDO_UID:-}" ]; then
    for p in "$h/.local" "$h/.local/state" "$h/.local/state/provision-tui" "$base"; do
      [ -O "$p" ] && own "$p"
    done
  fi
  return 0
}
FILES=(out err rc pid sup boot ended)

# The end record, then stdout and stderr are closed: the channel's EOF tells the client that
# every byte of both streams has arrived.
end() {
  local state=$1 rc=""
  [ -r "$d.rc" ] && IFS= read -r rc <"$d.rc"
  printf '\0__PTUI_END_%s %s %s\n' "$key" "$state" "${rc:--}"
  # Stderr's own end: through the remote shell no EOF follows (its streams stay open).
  printf '\0__PTUI_END_%s\n' "$key" >&2
  exec >&- 2>&-
  local ack=""
  # Bounded: a connection that died unnoticed must not keep this agent (and a follower
  # waiting on it) for the TCP timeout.
  IFS= read -r -t 60 ack || true
  # Removed in the background (one fork: a non-interactive shell leaves its jobs running on
  # exit), so the channel closes without waiting for rm.
  if [ "$ack" = rm ]; then rm -f -- "${FILES[@]/#/$d.}" >/dev/null 2>&1 & fi
  exit 0
}

# Runs the job with this agent as its supervisor: $1 spool, $2 timeout, $3 name, $4 masked env
# names, $5 script, then the interpreter; `timeout` KILLs $kg s after its TERM (the cancel grace:
# a TERM from a cancel reaches `timeout` too, and its -k would otherwise cut the grace short). Two processes besides the installer's own: `timeout`
# (exec'd by the subshell that wrote its pid, so that pid is its process group, the one a kill
# targets) and the `tee` of stdout. Stderr, usually small, is copied by this shell itself
# (lastpipe: no fork). SIGPIPE is ignored here, not in the job: when the channel goes, the
# copies to the spool go on.
supervise() {
  local d=$1 t=$2 n=$3 m=$4 s=$5 line live=1 v k
  shift 5
  local -a vals=()
  for k in $m; do
    v=${!k-}
    [ -n "$v" ] && vals+=("$v")
  done
  trap '' PIPE
  shopt -s lastpipe
  if [ ${#vals[@]} -gt 0 ]; then
    # Sensitive values are masked before they reach the spool: awk reads them from its
    # environment by name (never from argv) and replaces them as literal strings. mawk reads
    # a pipe in blocks unless -W interactive: the lines would wait for 4 KiB.
    local aw=(awk)
    case $(awk -W version 2>&1 </dev/null) in *mawk*) aw=(awk -W interactive) ;; esac
    exec 3> >(LC_ALL=C "${aw[@]}" -v names="$m" 'BEGIN { k = split(names, N, " "); c = 0
          for (i = 1; i <= k; i++) { v = ENVIRON[N[i]]; if (v != "") V[++c] = v
            p = split(v, P, "\n"); if (p > 1) for (j = 1; j <= p; j++) if (length(P[j]) >= 4) V[++c] = P[j] } }
        { line = $0
          for (i = 1; i <= c; i++) { out = ""
            while ((x = index(line, V[i])) > 0) { out = out substr(line, 1, x - 1) "***"; line = substr(line, x + length(V[i])) }
            line = out line }
          print line; fflush() }' | tee -p -a "$d.out")
  else
    exec 3> >(tee -p -a "$d.out")
  fi
  local tee_pid=$!
  exec 5>>"$d.err"
  { trap - PIPE; echo "$BASHPID" >"$d.pid"; exec timeout -k "$kg" "$t" "$@" -c "$s" "$n" </dev/null 5>&-; } 2>&1 1>&3 3>&- |
    while IFS= read -r line || [ -n "$line" ]; do
      for v in "${vals[@]}"; do line=${line//"$v"/***}; done
      printf '%s\n' "$line" >&5
      if [ $live = 1 ]; then printf '%s\n' "$line" >&2 2>/dev/null || live=0; fi
    done
  echo "${PIPESTATUS[0]}" >"$d.rc"
  exec 3>&- 5>&-
  # All of stdout is in the spool (and sent) once its tee is gone.
  wait "$tee_pid" 2>/dev/null || while kill -0 "$tee_pid" 2>/dev/null; do sleep 0.05; done
  : >"$d.ended"
  trap - PIPE
}

# A supervisor that runs as root answers kill -0 with EPERM: that is alive too.
alive() {
  kill -0 "$1" 2>/dev/null && return 0
  case $(LC_ALL=C kill -0 "$1" 2>&1) in *"not permitted"*) return 0 ;; esac
  return 1
}

# Marks where the spooled streams begin: what a login script printed before is not counted.
started() {
  echo "__PTUI_STARTED $key"
  echo "__PTUI_STARTED $key" >&2
}

follow() {
  local oo=$1 eo=$2 sp="" boot="" now="" a b
  started
  [ -e "$d.out" ] || end gone
  [ -r "$d.sup" ] && IFS= read -r sp <"$d.sup"
  [ -r "$d.boot" ] && IFS= read -r boot <"$d.boot"
  IFS= read -r now </proc/sys/kernel/random/boot_id
  if [ -e "$d.ended" ] || [ -z "$sp" ] || [ "$boot" != "$now" ] || ! alive "$sp"; then
    tail -c +$((oo + 1)) -- "$d.out"
    tail -c +$((eo + 1)) -- "$d.err" >&2
  else
    tail -c +$((oo + 1)) -F -s 0.2 --pid="$sp" -- "$d.out" 2>/dev/null &
    a=$!
    tail -c +$((eo + 1)) -F -s 0.2 --pid="$sp" -- "$d.err" >&2 2>/dev/null &
    b=$!
    wait "$a" "$b"
  fi
  if [ -e "$d.ended" ]; then end ended; else end lost; fi
}

sweep() {
  # Spools of ended jobs older than $1 minutes, and of jobs whose output stopped that long
  # ago, are removed; at most once an hour, in the background, so a start costs no fork.
  local age=$1 now last=0
  printf -v now '%(%s)T' -1
  [ -r "$base/.swept" ] && IFS= read -r last <"$base/.swept"
  [ $((now - last)) -ge 3600 ] || return 0
  echo "$now" >"$base/.swept"
  (find "$base" -maxdepth 1 \( -name '*.ended' -o -name '*.out' \) -mmin +"$age" -printf '%f\n' 2>/dev/null |
    sed 's/\.[a-z]*$//' | sort -u | while IFS= read -r k; do rm -f -- "${FILES[@]/#/$base/$k.}"; done) </dev/null >/dev/null 2>&1 &
}

case $mode in
start)
  rec t
  rec kg
  rec n
  rec age
  rec m
  rec ni
  interp=()
  for ((i = 0; i < ni; i++)); do rec a; interp+=("$a"); done
  rec s
  while IFS= read -r -d "" kv && [ -n "$kv" ]; do export "${kv?}"; done
  mkbase || { echo "provision-tui: cannot create $base" >&2; exit 3; }
  [ -e "$d.out" ] && { echo "provision-tui: the spool $d exists already" >&2; exit 3; }
  : >"$d.out" && : >"$d.err" && : >"$d.rc" && : >"$d.pid" && : >"$d.sup" && : >"$d.boot" ||
    { echo "provision-tui: cannot write the spool in $base (disk full?)" >&2; exit 3; }
  own "$d.out" "$d.err" "$d.rc" "$d.pid" "$d.sup" "$d.boot"
  IFS= read -r boot </proc/sys/kernel/random/boot_id && echo "$boot" >"$d.boot"
  sweep "$age"
  started
  echo "$BASHPID" >"$d.sup"
  supervise "$d" "$t" "$n" "$m" "$s" "${interp[@]}" </dev/null
  if [ -e "$d.ended" ]; then end ended; else end lost; fi
  ;;
follow)
  rec oo
  rec eo
  follow "$oo" "$eo"
  ;;
kill)
  # TERM to the installer's process group, KILL after $steps * 0.2 s; then the remote end
  # is collected by whoever follows the job.
  rec steps
  pg=""
  [ -r "$d.pid" ] && IFS= read -r pg <"$d.pid"
  [ -n "$pg" ] || { echo "provision-tui: no process group recorded in $d" >&2; exit 0; }
  g() { kill -"$1" -- -"$pg" 2>/dev/null || kill -"$1" "$pg" 2>/dev/null; }
  g TERM
  i=0
  while g 0; do
    i=$((i + 1))
    if [ $i -gt "$steps" ]; then g KILL; break; fi
    sleep 0.2
  done
  exit 0
  ;;
*)
  echo "provision-tui: unknown agent mode $mode" >&2
  exit 3
  ;;
esac
