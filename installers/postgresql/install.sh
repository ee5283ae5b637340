#!/usr/bin/env bash
# postgresql: Debian's PostgreSQL, one database + owner with a password, listen address, pg_hba entry.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
valid_cidr() {   # IPv4 a.b.c.d/n (n <= 32) or an IPv6 address/n (n <= 128)
  local o
  if [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]]; then
    for o in "${BASH_REMATCH[@]:1:4}"; do (( 10#$o <= 255 )) || return 1; done
    (( 10#${BASH_REMATCH[5]} <= 32 ))
  elif [[ $1 =~ ^[0-9a-fA-F:]*:[0-9a-fA-F:]*/([0-9]{1,3})$ ]]; then
    (( 10#${BASH_REMATCH[1]} <= 128 ))
  else
    return 1
  fi
}
sql_str() { printf "'%s'" "${1//\'/\'\'}"; }   # a SQL string literal (standard_conforming_strings)
pgpass_field() { local s=${1//\\/\\\\}; printf '%s' "${s//:/\\:}"; }

# ---- validate every input before touching the server
DB_NAME=${DB_NAME:-app}
DB_USER=${DB_USER:-app}
DB_PASSWORD=${DB_PASSWORD:-}
LISTEN_ADDRESSES=${LISTEN_ADDRESSES:-localhost}
ALLOWED_CIDR=${ALLOWED_CIDR:-127.0.0.1/32}
PORT=${PORT:-5432}
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || fail 1 "db_name '$DB_NAME' must match [a-z_][a-z0-9_]*"
[[ $DB_USER =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || fail 1 "db_user '$DB_USER' must match [a-z_][a-z0-9_]*"
case $DB_NAME in postgres|template0|template1) fail 1 "db_name '$DB_NAME' is reserved by PostgreSQL" ;; esac
case $DB_USER in postgres|public|pg_*) fail 1 "db_user '$DB_USER' is reserved by PostgreSQL" ;; esac
[ "${#DB_PASSWORD}" -ge 12 ] || fail 1 "db_password is required and must be at least 12 characters"
case $DB_PASSWORD in *$'\n'*|*$'\r'*) fail 1 "db_password must be one line" ;; esac
[[ $LISTEN_ADDRESSES =~ ^(\*|localhost|[0-9a-fA-F.:]+(,[0-9a-fA-F.:]+)*)$ ]] || fail 1 "listen_addresses '$LISTEN_ADDRESSES' is not *, localhost or a list of addresses"
valid_cidr "$ALLOWED_CIDR" || fail 1 "allowed_cidr '$ALLOWED_CIDR' is not a network like 10.0.0.0/8"
{ [[ $PORT =~ ^[0-9]+$ ]] && (( PORT >= 1 && PORT <= 65535 )); } || fail 1 "port '$PORT' is not a port"

# ---- install
pkg_install postgresql postgresql-client
ver=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -n | tail -n1)
{ [ -n "$ver" ] && [ -d "/etc/postgresql/$ver/main" ]; } || fail 2 "no PostgreSQL cluster in /etc/postgresql after install"
confdir=/etc/postgresql/$ver/main
restart=0; reload=0
conf=$(cat <<CONF
# managed by provision-tui (postgresql installer)
listen_addresses = '$LISTEN_ADDRESSES'
port = $PORT
password_encryption = scram-sha-256
CONF
)
put "$confdir/conf.d/provision-tui.conf" 0644 "$conf" && restart=1
chown postgres:postgres "$confdir/conf.d/provision-tui.conf"
# our pg_hba block, kept between markers and rewritten only when it differs
block=$(printf '# BEGIN provision-tui\nhost    %s    %s    %s    scram-sha-256\n# END provision-tui' "$DB_NAME" "$DB_USER" "$ALLOWED_CIDR")
hba=$confdir/pg_hba.conf
current=$(sed -n '/^# BEGIN provision-tui$/,/^# END provision-tui$/p' "$hba")
if [ "$current" != "$block" ]; then
  sed -i '/^# BEGIN provision-tui$/,/^# END provision-tui$/d' "$hba"
  printf '%s\n' "$block" >> "$hba"
  reload=1
fi
systemctl is-enabled --quiet postgresql || systemctl enable --quiet postgresql
if [ "$restart" = 1 ] || ! systemctl is-active --quiet "postgresql@$ver-main"; then
  systemctl restart postgresql || fail 3 "postgresql did not restart"
elif [ "$reload" = 1 ]; then
  systemctl reload postgresql || fail 3 "postgresql reload failed"
fi
ready=false
for _ in $(seq 1 30); do
  if runuser -u postgres -- pg_isready -q -p "$PORT"; then ready=true; break; fi
  sleep 0.5
done
[ "$ready" = true ] || fail 3 "postgresql does not accept connections on port $PORT"

# ---- role and database (the password is changed only when the current one does not work)
psql_root() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
install -d -m 0755 /etc/postgresql/provision-tui
put /etc/postgresql/provision-tui/pgpass 0600 "127.0.0.1:$PORT:$DB_NAME:$DB_USER:$(pgpass_field "$DB_PASSWORD")" || true
put /etc/postgresql/provision-tui/pg_service.conf 0644 "$(printf '[provision-tui]\nhost=127.0.0.1\nport=%s\ndbname=%s\nuser=%s\npassfile=/etc/postgresql/provision-tui/pgpass' "$PORT" "$DB_NAME" "$DB_USER")" || true
login() { PGSERVICEFILE=/etc/postgresql/provision-tui/pg_service.conf PGSERVICE=provision-tui PGCONNECT_TIMEOUT=5 psql -XAtc 'select 1' 2>/dev/null | grep -qx 1; }
if [ "$(psql_root -Atc "select 1 from pg_roles where rolname = '$DB_USER'")" != 1 ]; then
  psql_root <<SQL || fail 3 "cannot create role $DB_USER"
CREATE ROLE "$DB_USER" LOGIN PASSWORD $(sql_str "$DB_PASSWORD");
SQL
  echo "created role $DB_USER"
fi
if [ "$(psql_root -Atc "select 1 from pg_database where datname = '$DB_NAME'")" != 1 ]; then
  psql_root -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\"" || fail 3 "cannot create database $DB_NAME"
  echo "created database $DB_NAME"
fi
if ! login; then
  psql_root <<SQL || fail 3 "cannot set the password of $DB_USER"
ALTER ROLE "$DB_USER" LOGIN PASSWORD $(sql_str "$DB_PASSWORD");
SQL
  echo "password of $DB_USER set"
fi

# ---- verify: a real password login over TCP
login || fail 3 "$DB_USER cannot log in to $DB_NAME on 127.0.0.1:$PORT with the password"
echo "postgresql $ver ready: database $DB_NAME, user $DB_USER, listening on $LISTEN_ADDRESSES:$PORT, clients from $ALLOWED_CIDR"
