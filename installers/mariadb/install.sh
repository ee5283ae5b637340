#!/usr/bin/env bash
# mariadb: Debian's MariaDB server, a root password, optionally a database and a user.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
sql_str() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }   # a MariaDB string literal
cnf_str() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }     # a quoted option-file value

# ---- validate every input before touching the server
ROOT_PASSWORD=${ROOT_PASSWORD:-}
BIND_ADDRESS=${BIND_ADDRESS:-127.0.0.1}
CREATE_DATABASE=${CREATE_DATABASE:-false}
[ "${#ROOT_PASSWORD}" -ge 12 ] || fail 1 "root_password is required and must be at least 12 characters"
case $ROOT_PASSWORD in *$'\n'*|*$'\r'*) fail 1 "root_password must be one line" ;; esac
if [[ $BIND_ADDRESS =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
  for o in "${BASH_REMATCH[@]:1}"; do (( 10#$o <= 255 )) || fail 1 "bind_address '$BIND_ADDRESS' is not an IP address"; done
elif ! [[ $BIND_ADDRESS =~ ^[0-9a-fA-F:]*:[0-9a-fA-F:]*$ ]]; then
  fail 1 "bind_address '$BIND_ADDRESS' is not an IP address"
fi
case $CREATE_DATABASE in true|false) ;; *) fail 1 "create_database must be true or false" ;; esac
if [ "$CREATE_DATABASE" = true ]; then
  DATABASE_NAME=${DATABASE_NAME:-}
  DATABASE_USER=${DATABASE_USER:-}
  DATABASE_PASSWORD=${DATABASE_PASSWORD:-}
  DATABASE_USER_HOST=${DATABASE_USER_HOST:-localhost}
  [[ $DATABASE_NAME =~ ^[A-Za-z0-9_]{1,64}$ ]] || fail 1 "database_name is required and must match [A-Za-z0-9_]{1,64}"
  case ${DATABASE_NAME,,} in mysql|information_schema|performance_schema|sys) fail 1 "database_name '$DATABASE_NAME' is a system database" ;; esac
  [[ $DATABASE_USER =~ ^[A-Za-z0-9_]{1,32}$ ]] || fail 1 "database_user is required and must match [A-Za-z0-9_]{1,32}"
  case ${DATABASE_USER,,} in root|mysql|mariadb.sys) fail 1 "database_user '$DATABASE_USER' is reserved" ;; esac
  [ "${#DATABASE_PASSWORD}" -ge 12 ] || fail 1 "database_password is required and must be at least 12 characters"
  case $DATABASE_PASSWORD in *$'\n'*|*$'\r'*) fail 1 "database_password must be one line" ;; esac
  [[ $DATABASE_USER_HOST =~ ^[A-Za-z0-9.%_:-]{1,255}$ ]] || fail 1 "database_user_host '$DATABASE_USER_HOST' is not a host or pattern"
fi

# ---- install and configure
pkg_install mariadb-server mariadb-client
changed=0
put /etc/mysql/mariadb.conf.d/90-provision-tui.cnf 0644 "$(printf '# managed by provision-tui (mariadb installer)\n[mysqld]\nbind-address = %s' "$BIND_ADDRESS")" && changed=1
systemctl is-enabled --quiet mariadb || systemctl enable --quiet mariadb
if [ "$changed" = 1 ] || ! systemctl is-active --quiet mariadb; then
  systemctl restart mariadb || fail 3 "mariadb did not start: $(journalctl -u mariadb -n 5 --no-pager 2>&1)"
fi
up=false
for _ in $(seq 1 30); do
  if mariadb-admin --protocol=socket ping >/dev/null 2>&1; then up=true; break; fi
  sleep 0.5
done
[ "$up" = true ] || fail 3 "mariadb does not answer on its socket"

sql() { mariadb --protocol=socket -u root -N -B "$@"; }   # root via unix_socket (kept below)
health=/etc/mysql/provision-tui-health.cnf
put "$health" 0600 "$(printf '[client]\nuser=root\npassword=%s\nhost=127.0.0.1\nprotocol=tcp' "$(cnf_str "$ROOT_PASSWORD")")" || true
login_ok() { mariadb --defaults-extra-file="$1" -N -B -e 'SELECT 1' 2>/dev/null | grep -qx 1; }
# root: the local socket login stays (Debian's maintenance scripts need it); a password is added
if ! login_ok "$health"; then
  sql <<SQL || fail 3 "cannot set the root password"
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD($(sql_str "$ROOT_PASSWORD"));
FLUSH PRIVILEGES;
SQL
  echo "root password set"
fi
# the anonymous users and the test database of a default install
if [ -n "$(sql -e "SELECT 1 FROM mysql.global_priv WHERE User='' LIMIT 1")" ] || [ -n "$(sql -e "SHOW DATABASES LIKE 'test'")" ]; then
  sql -e "DELETE FROM mysql.global_priv WHERE User=''; DROP DATABASE IF EXISTS test; FLUSH PRIVILEGES;" || fail 3 "cannot remove anonymous users"
fi

if [ "$CREATE_DATABASE" = true ]; then
  if [ -z "$(sql -e "SHOW DATABASES LIKE '$DATABASE_NAME'")" ]; then
    sql -e "CREATE DATABASE \`$DATABASE_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" || fail 3 "cannot create database $DATABASE_NAME"
    echo "created database $DATABASE_NAME"
  fi
  user_cnf=$(mktemp); trap 'rm -f "$user_cnf"' EXIT
  printf '[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nprotocol=tcp\ndatabase=%s\n' "$DATABASE_USER" "$(cnf_str "$DATABASE_PASSWORD")" "$DATABASE_NAME" > "$user_cnf"
  if [ -z "$(sql -e "SELECT 1 FROM mysql.user WHERE User='$DATABASE_USER' AND Host='$DATABASE_USER_HOST'")" ]; then
    sql <<SQL || fail 3 "cannot create user $DATABASE_USER"
CREATE USER '$DATABASE_USER'@'$DATABASE_USER_HOST' IDENTIFIED BY $(sql_str "$DATABASE_PASSWORD");
SQL
    echo "created user $DATABASE_USER@$DATABASE_USER_HOST"
  elif [ "$DATABASE_USER_HOST" = localhost ] || [ "$DATABASE_USER_HOST" = % ] || [ "$DATABASE_USER_HOST" = 127.0.0.1 ]; then
    login_ok "$user_cnf" || {
      sql <<SQL || fail 3 "cannot set the password of $DATABASE_USER"
ALTER USER '$DATABASE_USER'@'$DATABASE_USER_HOST' IDENTIFIED BY $(sql_str "$DATABASE_PASSWORD");
SQL
      echo "password of $DATABASE_USER set"; }
  fi
  if ! sql -e "SHOW GRANTS FOR '$DATABASE_USER'@'$DATABASE_USER_HOST'" | grep -qF "ON \`$DATABASE_NAME\`.*"; then
    sql -e "GRANT ALL PRIVILEGES ON \`$DATABASE_NAME\`.* TO '$DATABASE_USER'@'$DATABASE_USER_HOST'; FLUSH PRIVILEGES;" || fail 3 "cannot grant $DATABASE_NAME to $DATABASE_USER"
    echo "granted $DATABASE_NAME to $DATABASE_USER@$DATABASE_USER_HOST"
  fi
fi

# ---- verify: a real password login over TCP
login_ok "$health" || fail 3 "root cannot log in over TCP with the password"
echo "mariadb ready on $BIND_ADDRESS:3306"
