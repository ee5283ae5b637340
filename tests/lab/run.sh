#!/usr/bin/env bash
# The lab suite: every installer, through the provision-tui binary, against real Debian 12 servers.
#
#   tests/lab/run.sh [fast|slow|all|INSTALLER_TEST...]
#
#   fast (default): base-setup nginx redis postgresql mariadb caddy docker node-exporter + the
#                   sequence base-setup -> docker -> nginx on one server, and cancel-apt (CI tier)
#   slow:           node-app compose-app n8n                            (own command, not in CI)
#
# Per installer: install with typical inputs and check the service from OUTSIDE (from this host);
# install again and compare packages + config checksums (idempotency); install with an invalid
# value and expect exit 10 + job kind installer_validation + server unchanged; run the manifest's
# health check; uninstall and check the service is gone. nginx, redis, postgresql and caddy also
# run rollback_check (issue 12 part 3) before the uninstall.
#
# Skips (exit 0, with the reason) when the lab cannot run here: not root, no namespaces, no
# systemd-nspawn, or PROVISION_TUI_LAB=0. PROVISION_TUI_LAB=1 turns a skip into a failure.
# Env: PROVISION_TUI_BIN (default: cargo build, then target/debug/provision-tui),
#      PTLAB_JOBS (servers used in parallel, default 2), PTLAB_KEEP=1 (leave the lab up).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
LAB=$here/lab.sh
JOBS=${PTLAB_JOBS:-2}

FAST=(base-setup nginx redis postgresql mariadb caddy docker node-exporter sequence cancel-apt)
SLOW=(node-app compose-app n8n)
case ${1:-fast} in
  fast) TESTS=("${FAST[@]}") ;;
  slow) TESTS=("${SLOW[@]}") ;;
  all) TESTS=("${FAST[@]}" "${SLOW[@]}") ;;
  *) TESTS=("$@") ;;
esac

if reason=$("$LAB" check); then :; else
  if [ "${PROVISION_TUI_LAB:-}" = 1 ]; then echo "lab suite FAILED: PROVISION_TUI_LAB=1 but $reason" >&2; exit 1; fi
  echo "lab suite SKIPPED: $reason"
  exit 0
fi

if [ -z "${PROVISION_TUI_BIN:-}" ]; then
  (cd "$root" && cargo build -q --bin provision-tui)
  PROVISION_TUI_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/provision-tui
fi
[ -x "$PROVISION_TUI_BIN" ] || { echo "no provision-tui binary at $PROVISION_TUI_BIN" >&2; exit 1; }
BIN=$(realpath "$PROVISION_TUI_BIN")

WORK=$(mktemp -d /tmp/ptlab-run.XXXXXX)
export PROVISION_TUI_DB=$WORK/state.db
export PROVISION_TUI_USER_KNOWN_HOSTS=$WORK/user_known_hosts
export XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data XDG_STATE_HOME=$WORK/state
: > "$PROVISION_TUI_USER_KNOWN_HOSTS"

cleanup() {
  local rc=$?
  if [ "${PTLAB_KEEP:-}" != 1 ]; then "$LAB" teardown >/dev/null 2>&1 || true; fi
  if [ -n "${GITD_PID:-}" ]; then kill "$GITD_PID" 2>/dev/null || true; fi
  echo "logs and state: $WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BAD_KEY="not a key"
t_setup=$SECONDS
"$LAB" setup
"$LAB" golden
KEY=$("$LAB" key)
echo "lab ready in $((SECONDS - t_setup)) s"

# ---------------------------------------------------------------------------------------------
# helpers, used inside one test (each test runs in its own subshell with SRV=N, LOG=file)
pt() { "$BIN" "$@"; }
rssh() { "$LAB" ssh "$SRV" "$@"; }
addr() { "$LAB" ip "$SRV"; }
lab_net() { local b; b=$("$LAB" bridge-ip); echo "${b%.1}.0/24"; }
say() { printf '[%s %s] %s\n' "$(date +%T)" "$CUR" "$*"; }
fail() { say "FAIL: $*"; exit 1; }
state() { rssh bash -s < "$here/state.sh"; }
timed() {   # timed LABEL cmd... : runs cmd, records the duration, returns its exit code
  local label=$1 t0=$EPOCHREALTIME rc=0; shift
  "$@" >> "$LOG.out" 2>&1 || rc=$?
  awk -v a="$t0" -v b="$EPOCHREALTIME" -v c="$CUR" -v l="$label" -v r="$rc" 'BEGIN { printf "%s\t%s\t%.1f\t%s\n", c, l, b - a, r }' >> "$WORK/times.tsv"
  return "$rc"
}
expect_install() {   # expect_install CODE APP ARGS...
  local want=$1 app=$2 rc=0; shift 2
  timed "install-$( [ "$want" = 0 ] && echo ok || echo "exit$want")" pt install "$app" --on "h$SRV" "$@" || rc=$?
  [ "$rc" = "$want" ] || { tail -n 25 "$LOG.out"; fail "install $app exited $rc, expected $want"; }
}
last_job_field() { pt jobs --json --server "h$SRV" --limit 1 | python3 -c "import json,sys; j=json.load(sys.stdin); print(j[0].get('$1') if j else '')"; }
register() {
  pt server add "h$SRV" --host "$(addr)" --user root --identity "$KEY" >> "$LOG.out" 2>&1 || fail "server add"
  pt server trust "h$SRV" --yes >> "$LOG.out" 2>&1 || fail "server trust"
}
health() {   # the manifest's health check, run on the server like the health checker does
  local app=$1 h
  h=$(pt catalog show "$app" | sed -n 's/^health: //p')
  [ -n "$h" ] || fail "$app has no health check"
  if [[ $h == http://* || $h == https://* ]]; then
    [ "$(rssh "curl -sk -o /dev/null -w '%{http_code}' '$h'")" = 200 ] || fail "health url $h is not 200"
  else
    rssh "$h" || fail "health command failed: $h"
  fi
  # and through provision-tui's own checker (exit 20 when a check of the server fails)
  local out rc=0
  out=$(pt check "h$SRV" 2>&1) || rc=$?
  [ "$rc" = 0 ] || { echo "$out"; fail "provision-tui check h$SRV exited $rc"; }
  say "health green (manifest check, and provision-tui check)"
}
# the common life cycle: install, outside check, idempotency, invalid input, health, uninstall
lifecycle() {   # lifecycle APP "GOOD ARGS" "BAD ARGS" verify_fn gone_fn [rollback_fn, run before the uninstall]
  local app=$1 gone=$5
  lifecycle_no_uninstall "$1" "$2" "$3" "$4"
  if [ -n "${6:-}" ]; then "$6"; fi
  timed uninstall pt uninstall "$app" --on "h$SRV" || fail "uninstall $app failed"
  "$gone" || fail "$app still there after uninstall"
  say "uninstalled and gone"
}
lifecycle_no_uninstall() {   # APP "GOOD ARGS" "BAD ARGS" verify_fn
  local app=$1 good=$2 bad=$3 verify=$4 s1 s2
  local -a g b
  eval "g=($good)"; eval "b=($bad)"
  expect_install 0 "$app" "${g[@]}"
  [ "$(last_job_field status)" = succeeded ] || fail "job not succeeded"
  "$verify" || fail "$app does not work from outside after install"
  say "installed and verified from outside"
  s1=$(state)
  expect_install 0 "$app" "${g[@]}"
  s2=$(state)
  if [ "$s1" != "$s2" ]; then diff <(echo "$s1") <(echo "$s2") | head -n 20; fail "second install changed the server"; fi
  "$verify" || fail "$app does not work after the second install"
  say "second install changed nothing"
  expect_install 10 "$app" "${b[@]}"
  [ "$(last_job_field error_kind)" = installer_validation ] || fail "job kind is $(last_job_field error_kind), expected installer_validation"
  s2=$(state)
  [ "$s1" = "$s2" ] || { diff <(echo "$s1") <(echo "$s2") | head -n 20; fail "a rejected install changed the server"; }
  say "invalid input rejected by the script (exit 10, installer_validation), server unchanged"
  health "$app"
  if [ -f "$root/installers/$app/upgrade.sh" ]; then
    timed upgrade pt upgrade "$app" --on "h$SRV" || { tail -n 25 "$LOG.out"; fail "upgrade.sh of $app failed"; }
    [ "$(last_job_field action)" = upgrade ] || fail "the last job is not the upgrade"
    "$verify" || fail "$app does not work after upgrade.sh"
    say "upgrade.sh ok, still working"
  fi
}
# Issue 12 part 3, on an app installed with GOOD ARGS (by lifecycle_no_uninstall): a change that
# works keeps a root-only copy of the configuration; a change that breaks the service is rolled
# back by the job itself (status rolled_back, exit 12), after which the service answers and the
# server is as it was before the breaking change; `rollback` returns to the deployment before.
rollback_check() {   # rollback_check APP verify_fn "WORKING CHANGE ARGS" verify_changed_fn "BREAKING ARGS"
  local app=$1 verify=$2 verify2=$4 s1 s2 id
  local -a w b
  eval "w=($3)"; eval "b=($5)"
  expect_install 0 "$app" "${w[@]}"
  "$verify2" || fail "$app does not work after a working change"
  rssh "[ \$(stat -c %a /var/backups/provision-tui) = 700 ] && ls /var/backups/provision-tui/config/$app | grep -q '^j'" ||
    fail "no root-only copy of the configuration of $app"
  s1=$(state)
  expect_install 12 "$app" "${b[@]}"
  id=$(last_job_field id)
  [ "$(last_job_field status)" = rolled_back ] || { tail -n 30 "$LOG.out"; fail "job $id is $(last_job_field status), expected rolled_back"; }
  log_has "$id" "provision-tui: rolled back: $app runs with the configuration it had before this run" ||
    { pt logs "$id" 2>&1 | tail -n 20; fail "job $id does not say it rolled back"; }
  "$verify2" || fail "$app does not answer after the rollback of job $id"
  s2=$(state)
  [ "$s1" = "$s2" ] || { diff <(echo "$s1") <(echo "$s2") | head -n 20; fail "the server after the rollback differs from before the breaking change"; }
  say "breaking change rolled back (job $id rolled_back, exit 12): the service answers, the server is as before"
  timed rollback pt rollback "$app" --on "h$SRV" || { tail -n 30 "$LOG.out"; fail "rollback $app failed"; }
  [ "$(last_job_field action)" = rollback ] || fail "the last job is not the rollback"
  [ "$(last_job_field status)" = succeeded ] || fail "the rollback job is $(last_job_field status)"
  "$verify" || fail "$app does not work after the rollback to the deployment before the working change"
  say "rollback returned to the deployment before the working change"
}
port_closed() { ! timeout 3 bash -c "exec 3<>/dev/tcp/$(addr)/$1" 2>/dev/null; }
pkg_gone() { ! rssh "dpkg-query -W -f='\${db:Status-Status}' $1 2>/dev/null | grep -qx installed"; }

# ---------------------------------------------------------------------------------------------
# the tests
t_base-setup() {
  local pub; pub=$(cat "$KEY.pub")
  v() {
    # key login works, password logins are refused, the firewall and timezone are set
    rssh true || return 1
    out=$(ssh -i /dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
          -o PreferredAuthentications=password,keyboard-interactive -o ConnectTimeout=3 "root@$(addr)" true 2>&1) && return 1
    [[ $out == *"Permission denied (publickey)"* ]] || { echo "password logins still offered: $out"; return 1; }
    rssh "ufw status | grep -q '^Status: active' && ufw status | grep -qE '^8080/tcp +ALLOW' && [ \$(readlink /etc/localtime) = /usr/share/zoneinfo/Europe/Berlin ] && [ \$(hostname) = web1 ]"
    rssh "systemctl is-active --quiet fail2ban && command -v htop git vim curl >/dev/null"
  }
  gone() { rssh "! test -e /etc/ssh/sshd_config.d/00-provision-tui.conf && sshd -T | grep -qx 'passwordauthentication yes'" && pkg_gone ufw && rssh true; }
  lifecycle base-setup \
    "--set 'ssh_public_key=$pub' --set extra_ports=8080,51820/udp --set timezone=Europe/Berlin --set host_name=web1 --set install_fail2ban=true --set unattended_upgrades=true" \
    "--set 'ssh_public_key=$pub' --set timezone=Mars/Olympus" v gone
}
t_nginx() {
  v() { local a b; a=$(curl -fsS -H 'Host: web.lab.test' "http://$(addr)/") && b=$(curl -fsSk "https://$(addr)/") &&
        [[ $a == *'web.lab.test is served by nginx'* && $b == *'served by nginx'* ]]; }
  gone() { port_closed 80 && port_closed 443 && pkg_gone nginx; }
  v2() { [[ $(curl -fsS -H 'Host: web2.lab.test' "http://$(addr)/") == *'web2.lab.test is served by nginx'* ]]; }
  # a certificate with a 1024-bit RSA key: a valid PEM pair, so the script accepts it, but
  # OpenSSL 3's security level refuses it in nginx: `nginx -t` fails (exit 3)
  openssl req -x509 -newkey rsa:1024 -nodes -days 2 -subj /CN=web2.lab.test \
    -keyout "$WORK/weak-$SRV.key" -out "$WORK/weak-$SRV.crt" 2>/dev/null || fail "cannot make the weak certificate"
  WEAK_KEY=$(cat "$WORK/weak-$SRV.key"); export WEAK_KEY
  rb() { rollback_check nginx v "--set server_name=web2.lab.test --set admin_email=ops@lab.test --set enable_ssl=true" v2 \
           "--set server_name=web2.lab.test --set admin_email=ops@lab.test --set enable_ssl=true --set ssl_mode=provided --set-file ssl_certificate=$WORK/weak-$SRV.crt --set-env ssl_certificate_key=WEAK_KEY"; }
  lifecycle nginx "--set server_name=web.lab.test --set admin_email=ops@lab.test --set enable_ssl=true --set ssl_mode=self_signed" \
    "--set server_name=web.lab.test --set admin_email=ops@lab.test --set enable_ssl=true --set ssl_mode=provided --set ssl_certificate=not-a-pem --set-env ssl_certificate_key=BAD_KEY" v gone rb
}
t_redis() {
  export REDIS_PW=lab-Redis-pass-42
  v() { [ "$(REDISCLI_AUTH=$REDIS_PW redis-cli -h "$(addr)" --no-auth-warning ping)" = PONG ] &&
        [[ $(redis-cli -h "$(addr)" ping 2>&1) == *NOAUTH* ]]; }
  gone() { port_closed 6379 && pkg_gone redis-server; }
  v2() { v && [[ $(REDISCLI_AUTH=$REDIS_PW redis-cli -h "$(addr)" --no-auth-warning config get maxmemory) == *33554432* ]]; }
  # an address the server does not have: redis-server cannot bind and does not start (exit 3)
  rb() { rollback_check redis v "--set-env redis_password=REDIS_PW --set bind_address=0.0.0.0 --set maxmemory=32mb" v2 \
           "--set-env redis_password=REDIS_PW --set bind_address=10.99.99.99"; }
  lifecycle redis "--set-env redis_password=REDIS_PW --set bind_address=0.0.0.0 --set maxmemory=64mb --set maxmemory_policy=allkeys-lfu" \
    "--set-env redis_password=REDIS_PW --set bind_address=999.0.0.1" v gone rb
}
t_postgresql() {
  export PG_PW="lab pg pass 'quoted' : \\ x"
  v() { [ "$(PGPASSWORD=$PG_PW PGCONNECT_TIMEOUT=5 psql -X -h "$(addr)" -U shopper -d shop -Atc 'select current_user')" = shopper ]; }
  gone() { port_closed 5432 && pkg_gone postgresql; }
  v2() { v && rssh "grep -q '0.0.0.0/0' /etc/postgresql/*/main/pg_hba.conf"; }
  # an address the server does not have: postgres creates no TCP socket and stops (exit 3)
  rb() { rollback_check postgresql v "--set db_name=shop --set db_user=shopper --set-env db_password=PG_PW --set 'listen_addresses=*' --set allowed_cidr=0.0.0.0/0" v2 \
           "--set db_name=shop --set db_user=shopper --set-env db_password=PG_PW --set listen_addresses=10.99.99.99 --set allowed_cidr=0.0.0.0/0"; }
  lifecycle postgresql "--set db_name=shop --set db_user=shopper --set-env db_password=PG_PW --set 'listen_addresses=*' --set allowed_cidr=$(lab_net)" \
    "--set db_name=shop --set db_user=postgres --set-env db_password=PG_PW" v gone rb
}
t_mariadb() {
  export MY_ROOT='lab root "pass" \ x' MY_PW="lab user 'pass' 42"
  v() {
    printf '[client]\npassword="%s"\n' "${MY_PW//\'/\'}" > "$WORK/my-$SRV.cnf"
    [ "$(timeout 10 mariadb --defaults-extra-file="$WORK/my-$SRV.cnf" -h "$(addr)" -u shopper -D shop -N -B -e 'select current_user()')" = 'shopper@%' ]
  }
  gone() { port_closed 3306 && pkg_gone mariadb-server; }
  lifecycle mariadb "--set-env root_password=MY_ROOT --set bind_address=0.0.0.0 --set create_database=true --set database_name=shop --set database_user=shopper --set-env database_password=MY_PW --set database_user_host=%" \
    "--set-env root_password=MY_ROOT --set create_database=true --set database_name=mysql --set database_user=shopper --set-env database_password=MY_PW" v gone
}
t_caddy() {
  rssh "systemd-run --unit lab-upstream --property=WorkingDirectory=/usr/share/doc python3 -m http.server 8081" >/dev/null
  v() { local out; out=$(curl -fsSk --resolve "app.lab.test:443:$(addr)" https://app.lab.test/) && [[ $out == *'Directory listing'* ]]; }
  gone() { port_closed 443 && pkg_gone caddy; }
  v2() { v && rssh "grep -q 'reverse_proxy localhost:8081' /etc/caddy/Caddyfile"; }
  # an ACME email with a quote passes the checks but leaves the Caddyfile unparsable: `caddy validate` fails (exit 3)
  rb() { rollback_check caddy v "--set domain=app.lab.test --set upstream_port=8081 --set tls=internal --set upstream_host=localhost" v2 \
           "--set domain=app.lab.test --set upstream_port=8081 --set tls=acme --set 'acme_email=\"ops@lab.test'"; }
  lifecycle caddy "--set domain=app.lab.test --set upstream_port=8081 --set tls=internal" \
    "--set domain=app.lab.test --set upstream_port=8081 --set tls=internal --set upstream_host=300.1.1.1" v gone rb
}
docker_run_ok() {
  rssh 'set -e; d=$(mktemp -d); cp --parents /usr/bin/dash /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 "$d"
        tar -C "$d" -c . | docker import - lab/dash >/dev/null; rm -rf "$d"
        [ "$(docker run --rm lab/dash /usr/bin/dash -c "echo hello-from-a-container")" = hello-from-a-container ]'
}
t_docker() {
  v() { docker_run_ok && rssh "id -nG labuser | grep -qw docker && docker-compose version --short >/dev/null"; }
  gone() { pkg_gone docker.io && rssh '! test -S /run/docker.sock'; }
  rssh "useradd -m labuser"
  # overlay2 does not work on the lab's overlayfs root: vfs there (overlay2 gives a clean exit 12)
  lifecycle docker "--set storage_driver=vfs --set docker_user=labuser" "--set storage_driver=vfs --set docker_user=nosuchuser" v gone
}
t_sequence() {   # the way a user builds a server: baseline, then docker, then nginx
  local pub; pub=$(cat "$KEY.pub")
  expect_install 0 base-setup --set "ssh_public_key=$pub"
  expect_install 0 docker --set storage_driver=vfs
  expect_install 0 nginx --set server_name=seq.lab.test --set admin_email=ops@lab.test
  page=$(curl -fsS -H 'Host: seq.lab.test' "http://$(addr)/") || fail "nginx not reachable through ufw"
  [[ $page == *'seq.lab.test is served by nginx'* ]] || fail "unexpected page: $page"
  docker_run_ok || fail "docker run after base-setup failed"
  [ "$(pt server list --json | python3 -c "import json,sys; print([s['status'] for s in json.load(sys.stdin) if s['name']=='h$SRV'][0])")" = ready ] ||
    say "note: server status is not 'ready' after base-setup"
  say "base-setup -> docker -> nginx on one server: ok"
}

log_has() {   # log_has JOB TEXT [TRIES]: within TRIES s, default 10 (a cancelled job's last lines may be stored after its end)
  local _
  for _ in $(seq 1 "${3:-10}"); do
    # `logs` exits with the job's code (14: cancelled); grep -c reads it all: no SIGPIPE
    { pt logs "$1" 2>&1 || true; } | grep -cF -- "$2" >/dev/null && return 0
    sleep 1
  done
  return 1
}
no_secret_in_logs() {   # no_secret_in_logs TEXT: no job of this server logged it
  local id
  for id in $(pt jobs --json --server "h$SRV" | python3 -c 'import json,sys; print(" ".join(str(j["id"]) for j in json.load(sys.stdin)))'); do
    if log_has "$id" "$1" 1; then fail "a secret env value reached the log of job $id"; fi
  done
}
dpkg_running() { rssh 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = dpkg ] && exit 0; done; exit 1'; }
cancel_during_dpkg() {   # cancel_during_dpkg [ENV=VALUE...]: start base-setup, cancel it while dpkg runs
  local pub bg id rc=0; pub=$(cat "$KEY.pub")
  env "$@" "$BIN" install base-setup --on "h$SRV" --set "ssh_public_key=$pub" >> "$LOG.out" 2>&1 &
  bg=$!
  for _ in $(seq 1 300); do dpkg_running && break; sleep 0.3; done
  id=$(last_job_field id)
  [ -n "$id" ] && [ "$id" != None ] || fail "no job to cancel"
  timed cancel pt cancel "$id" || fail "cancel of job $id failed"
  wait "$bg" || rc=$?
  [ "$(last_job_field status)" = cancelled ] || fail "job $id is $(last_job_field status), expected cancelled (install exit $rc)"
  CANCELLED_JOB=$id
}
t_cancel-apt() {   # issue 15: cancel base-setup while apt runs, run it again: it succeeds, dpkg --audit clean
  local pub t0; pub=$(cat "$KEY.pub")
  # 1. the manifest's grace (30 s): apt-get ignores the TERM, the step ends, the script stops
  t0=$SECONDS
  cancel_during_dpkg
  grep -q 'a package manager is running on' "$LOG.out" || fail "cancel did not say that apt/dpkg was running"
  log_has "$CANCELLED_JOB" 'cancelled: stopping after the running step' || fail "the script did not stop after its package step"
  dpkg_running && fail "dpkg still runs after the cancel ended"
  [ -z "$(rssh 'ls -A /var/lib/dpkg/updates; dpkg --audit')" ] || fail "dpkg needs a repair after a cancel within the grace: $(rssh 'dpkg --audit')"
  say "cancel within the grace: the package step finished ($((SECONDS - t0)) s from the start of the install), dpkg --audit clean"
  # 2. a 1 s grace: KILL while dpkg works, as the issue's cancel did; dpkg may be left interrupted
  cancel_during_dpkg PROVISION_TUI_KILL_GRACE=1
  for _ in $(seq 1 120); do dpkg_running || break; sleep 1; done   # an orphaned dpkg may go on
  local broken=false
  if [ -n "$(rssh 'ls -A /var/lib/dpkg/updates; dpkg --audit')" ]; then
    broken=true; say "a KILL left dpkg interrupted: $(rssh 'dpkg --audit | head -n 2 | tr "\n" " "')"
  else
    say "note: the KILL did not leave dpkg interrupted this time"
  fi
  # 3. the next run repairs (when needed) and succeeds
  expect_install 0 base-setup --set "ssh_public_key=$pub"
  if [ "$broken" = true ]; then
    log_has "$(last_job_field id)" 'an earlier dpkg run was interrupted: repairing' || fail "the rerun did not repair dpkg"
  fi
  [ -z "$(rssh 'dpkg --audit')" ] || fail "dpkg --audit is not clean after the rerun: $(rssh 'dpkg --audit')"
  rssh 'dpkg-query -W -f="\${db:Status-Status}\n" git vim ufw | grep -vqx installed' && fail "packages not installed after the rerun"
  say "rerun succeeded, dpkg --audit clean"
}
t_node-exporter() {
  v() { local out; out=$(curl -fsS -m 5 "http://$(addr):9110/metrics") && [[ $out == *node_exporter_build_info* ]] && port_closed 9100; }
  gone() { port_closed 9110 && pkg_gone prometheus-node-exporter; }
  lifecycle node-exporter "--set listen_address=0.0.0.0 --set port=9110" "--set listen_address=10.99.99.99 --set port=9110" v gone
}

# compose-app: an image imported from the server's own python3 (the lab reaches no registry) and a
# git repository (served like node-app's) whose Dockerfile builds FROM it
compose_image() {
  rssh 'set -e; py=$(readlink -f /usr/bin/python3)
        files=("${py#/}"); for l in $(ldd "$py" | grep -o "/[^ ]*"); do files+=("${l#/}"); done
        tar -C / -ch --exclude=__pycache__ --exclude=usr/lib/python3.11/test "${files[@]}" usr/lib/python3.11 |
          docker import -c "CMD [\"$py\"]" - lab/python >/dev/null'
}
compose_commit() {   # compose_commit REPO TEXT [crash]
  local name=$1 text=$2 crash=${3:-} src=$WORK/git-src/$1 py=/usr/bin/python3.11
  git_repo "$name"; mkdir -p "$src/www"
  printf '%s\n' "$text" > "$src/www/index.html"
  if [ -n "$crash" ]; then
    printf 'FROM lab/python\nCMD ["%s", "-c", "raise SystemExit(\\"this release is broken\\")"]\n' "$py" > "$src/Dockerfile"
  else
    printf 'FROM lab/python\nCOPY www /www\nCMD ["%s", "-m", "http.server", "--directory", "/www", "8090"]\n' "$py" > "$src/Dockerfile"
  fi
  printf 'services:\n  web:\n    build: .\n    ports: ["8090:8090"]\n    environment:\n      GREETING: ${GREETING}\n' > "$src/compose.yaml"
  git_publish "$name" "$text"
}
t_compose-app() {
  local url; url="http://$("$LAB" bridge-ip):$GIT_PORT/web.git"
  export COMPOSE_ENV=$'GREETING=from the lab\nSECRET_TOKEN=c0mp0se-s3cret'
  expect_install 0 docker --set storage_driver=vfs
  timed image compose_image || fail "could not build the lab image"
  compose_commit web "compose v1"
  page() { curl -fsS -m 5 "http://$(addr):8090/"; }
  v() { [ "$(page)" = "compose v1" ] && rssh '[ "$(stat -c %a /srv/compose-apps/web/.env)" = 600 ] && grep -qx "GREETING=from the lab" /srv/compose-apps/web/.env'; }
  gone() { port_closed 8090 && rssh '! test -d /srv/compose-apps/web && [ -z "$(docker ps -aq --filter label=com.docker.compose.project=web)" ]'; }
  local good="--set app_name=web --set repo_url=$url --set-env env_vars=COMPOSE_ENV --set health_url=http://127.0.0.1:8090/"
  lifecycle_no_uninstall compose-app "$good" "--set app_name=web --set repo_url=$url --set-env env_vars=COMPOSE_ENV --set compose_file=nope.yaml" v
  no_secret_in_logs 'c0mp0se-s3cret'
  # upgrade: the new commit is built and its container recreated
  compose_commit web "compose v2"
  local -a g; eval "g=($good)"
  timed upgrade pt upgrade compose-app --on "h$SRV" "${g[@]}" || { tail -n 25 "$LOG.out"; fail "upgrade to v2 failed"; }
  [ "$(page)" = "compose v2" ] || fail "v2 not live after the upgrade: $(page)"
  say "upgrade to v2 live"
  # a broken commit fails the health check and is rolled back to v2
  compose_commit web "compose v3" crash
  expect_install 12 compose-app "${g[@]}"
  [ "$(page)" = "compose v2" ] || fail "v2 not restored after the failed upgrade: $(page)"
  say "broken v3 rolled back to v2 (exit 12, configuration)"
  timed uninstall pt uninstall compose-app --on "h$SRV" --set app_name=web || fail "uninstall compose-app failed"
  gone || fail "compose-app still there after uninstall"
  say "uninstalled (docker compose down) and gone"
}

# node-app: a git repository served from this host over dumb HTTP on the bridge address
GIT_PORT=8808
git_serve() {
  [ -n "${GITD_PID:-}" ] && return 0
  mkdir -p "$WORK/git"
  python3 -m http.server "$GIT_PORT" --bind "$("$LAB" bridge-ip)" --directory "$WORK/git" > "$WORK/git-http.log" 2>&1 &
  GITD_PID=$!
}
git_repo() {   # git_repo NAME: the work tree $WORK/git-src/NAME and its served bare repository
  local src=$WORK/git-src/$1
  [ -d "$src" ] && return 0
  mkdir -p "$src"; git -C "$src" init -q -b main
  git -C "$src" config user.email lab@lab.test; git -C "$src" config user.name lab
  git init -q --bare -b main "$WORK/git/$1.git"
}
git_publish() {   # git_publish NAME MESSAGE: commit everything and publish it to the served copy
  local src=$WORK/git-src/$1
  git -C "$src" add -A; git -C "$src" commit -q -m "$2"
  git -C "$src" push -q -f "$WORK/git/$1.git" main
  git -C "$WORK/git/$1.git" update-server-info
}
git_commit() {   # git_commit REPO_NAME VERSION_TEXT [crash]: a tiny app; "crash" makes it exit at start
  local name=$1 text=$2 crash=${3:-} src=$WORK/git-src/$1
  git_repo "$name"
  printf '{"name":"%s","version":"1.0.0","private":true,"scripts":{"start":"node server.js"}}\n' "$name" > "$src/package.json"
  if [ -n "$crash" ]; then
    printf 'console.error("this release is broken"); process.exit(1);\n' > "$src/server.js"
  else
    printf 'require("http").createServer((q, r) => r.end("%s " + process.env.GREETING + "\\n")).listen(process.env.PORT);\n' "$text" > "$src/server.js"
  fi
  git_publish "$name" "$text"
}
t_node-app() {
  local url; url="http://$("$LAB" bridge-ip):$GIT_PORT/hello.git"
  export APP_ENV=$'GREETING=from the lab\nSECRET_TOKEN=s3cr3t value'
  git_commit hello "hello v1"
  page() { curl -fsS -m 5 -H 'Host: hello.lab.test' "http://$(addr)/"; }
  v() { local out; out=$(page) && [[ $out == "hello v1 from the lab" ]]; }
  gone() { local out; out=$(curl -s -m 5 -H 'Host: hello.lab.test' "http://$(addr)/" || true); [[ $out != *hello* ]] && rssh '! test -d /srv/node-apps/hello && ! ss -ltn | grep -q ":3100 "'; }
  local good="--set app_name=hello --set repo_url=$url --set port=3100 --set-env env_vars=APP_ENV --set enable_proxy=true --set domain=hello.lab.test"
  # install, idempotency, invalid input (port outside the range), health -- uninstall comes last
  lifecycle_no_uninstall node-app "$good" "--set app_name=hello --set repo_url=$url --set port=4500 --set port_range_end=3999" v
  no_secret_in_logs 's3cr3t'
  # upgrade: a new commit is deployed as a new release, the previous one is kept
  git_commit hello "hello v2"
  local -a g; eval "g=($good)"
  expect_install 0 node-app "${g[@]}"
  [ "$(page)" = "hello v2 from the lab" ] || fail "v2 not live after the upgrade: $(page)"
  [ "$(rssh 'ls /srv/node-apps/hello/releases | wc -l')" = 2 ] || fail "the previous release was not kept"
  say "upgrade to v2 live, previous release kept"
  # a broken release fails its health check and is rolled back automatically
  git_commit hello "hello v3" crash
  expect_install 12 node-app "${g[@]}"
  [ "$(page)" = "hello v2 from the lab" ] || fail "v2 not restored after the failed upgrade: $(page)"
  say "broken v3 rolled back to v2 (exit 12, configuration)"
  timed uninstall pt uninstall node-app --on "h$SRV" --set app_name=hello || fail "uninstall node-app failed"
  gone || fail "node-app still there after uninstall"
  say "uninstalled and gone"
}
t_n8n() {
  export N8N_KEY=lab-n8n-encryption-key-0123456789
  v() { local out; out=$(curl -fsS -m 10 -H 'Host: n8n.lab.test' "http://$(addr)/healthz") && [[ $out == *ok* ]]; }
  gone() { local out; out=$(curl -s -m 5 -H 'Host: n8n.lab.test' "http://$(addr)/healthz" || true); [[ $out != *'"ok"'* ]] && rssh '! systemctl is-active --quiet n8n'; }
  lifecycle n8n "--set domain=n8n.lab.test --set-env encryption_key=N8N_KEY" "--set domain=n8n.lab.test --set-env encryption_key=N8N_KEY --set port=80" v gone
}

# ---------------------------------------------------------------------------------------------
run_test() {   # run_test NAME SERVER_NUMBER (in a subshell, output to $WORK/NAME.log)
  CUR=$1 SRV=$2 LOG=$WORK/$1.log
  export CUR SRV LOG
  (
    set -euo pipefail
    t0=$SECONDS
    if [ -e "$WORK/up-$SRV" ]; then "$LAB" reset "$SRV"; else "$LAB" up "$SRV"; touch "$WORK/up-$SRV"; fi
    pt server rm "h$SRV" >/dev/null 2>&1 || true
    register
    "t_$CUR"
    say "PASS in $((SECONDS - t0)) s"
  ) > "$LOG" 2>&1
}

for t in "${TESTS[@]}"; do declare -F "t_$t" >/dev/null || { echo "unknown test $t; known: ${FAST[*]} ${SLOW[*]}" >&2; exit 2; }; done

for t in "${TESTS[@]}"; do case $t in node-app|compose-app) git_serve ;; esac; done
t_all=$SECONDS
declare -A PIDS=() SERVER_OF=()
results=()
free=(); for ((k = 1; k <= JOBS; k++)); do free+=("$k"); done
queue=("${TESTS[@]}")
while ((${#queue[@]})) || ((${#PIDS[@]})); do
  while ((${#queue[@]})) && ((${#free[@]})); do
    t=${queue[0]}; queue=("${queue[@]:1}")
    s=${free[0]}; free=("${free[@]:1}")
    echo "[$(date +%T)] start $t on server $s"
    run_test "$t" "$s" & PIDS[$t]=$!; SERVER_OF[$t]=$s
  done
  wait -n 2>/dev/null || true
  for t in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$t]}" 2>/dev/null; then
      if wait "${PIDS[$t]}"; then r=PASS; else r=FAIL; fi
      results+=("$r $t")
      echo "[$(date +%T)] $r $t ($(tail -n 1 "$WORK/$t.log"))"
      [ "$r" = FAIL ] && sed 's/^/    /' "$WORK/$t.log" | tail -n 40
      free+=("${SERVER_OF[$t]}"); unset "PIDS[$t]"
    fi
  done
done

echo
echo "== times (seconds) =="
column -t -s $'\t' "$WORK/times.tsv" 2>/dev/null || cat "$WORK/times.tsv"
echo "== results: ${#results[@]} tests in $((SECONDS - t_all)) s (lab setup $((t_all - t_setup)) s) =="
printf '%s\n' "${results[@]}"
if printf '%s\n' "${results[@]}" | grep -q '^FAIL'; then exit 1; fi
