# provision-tui remote shell: one per pooled connection, so a short command (a health check)
# or a job's agent costs a fork here instead of an SSH session and a login shell. It is the
# `bash -c` script of one exec, never installed. Requests on stdin: NONCE NUL KIND NUL SCRIPT NUL. Answers: the
# command's stdout, then NUL NONCE SPACE STATUS LF; its stderr, then NUL NONCE LF on stderr.
# The nonce is fresh per request and unset in the command's subshell, so no output can end an
# answer by chance. The command runs in a subshell (its `exit`, `set -e` and variables stay
# there). KIND `run`: stdin from /dev/null, so it cannot read the requests that follow.
# KIND `stream` (the job agent): stdin is this shell's, from which it reads exactly its own
# request records and its acknowledgement, as it would on a channel of its own.
# KIND `fact` (a health check): SCRIPT defines and calls, or only calls, a function run in this
# shell itself, no subshell, with stdin and stderr /dev/null; it leaves its answer in
# __ptui_o, written with the answer's end in one write; no stderr end is written. The client defines each such function
# once per shell, and only for its own builtin-only code, which keeps its variables local.
printf '__PTUI_SHELL_READY 1\n'
while IFS= read -r -d '' __ptui_n && IFS= read -r -d '' __ptui_k && IFS= read -r -d '' __ptui_s; do
  if [ "$__ptui_k" = fact ]; then
    __ptui_o=
    eval "$__ptui_s" </dev/null 2>/dev/null
    __ptui_rc=$?
    printf '%s\0%s %s\n' "$__ptui_o" "$__ptui_n" "$__ptui_rc"
    __ptui_o=
    continue
  fi
  if [ "$__ptui_k" = agent ]; then
    # Defines the job agent as a function of this shell (once per shell: later jobs cost no
    # read and parse of its text), then runs it as a stream.
    eval "$__ptui_s"
    # shellcheck disable=SC2016 # expanded by the eval below, in the subshell
    __ptui_s='__ptui_agent "$HOME"'
    __ptui_k=stream
  fi
  if [ "$__ptui_k" = stream ]; then
    (
      __ptui_c=$__ptui_s
      unset __ptui_n __ptui_k __ptui_s
      eval "$__ptui_c"
    )
  else
    (
      __ptui_c=$__ptui_s
      unset __ptui_n __ptui_k __ptui_s
      eval "$__ptui_c"
    ) </dev/null
  fi
  __ptui_rc=$?
  printf '\0%s %s\n' "$__ptui_n" "$__ptui_rc"
  printf '\0%s\n' "$__ptui_n" >&2
done
