#!/usr/bin/env bash
# redis: Debian's redis-server with requirepass, maxmemory, an eviction policy and a bind address.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
# ptui:include net.sh

# ---- validate every input before touching the server
REDIS_PASSWORD=${REDIS_PASSWORD:-}
MAXMEMORY=${MAXMEMORY:-256mb}
MAXMEMORY_POLICY=${MAXMEMORY_POLICY:-allkeys-lru}
BIND_ADDRESS=${BIND_ADDRESS:-127.0.0.1}
PORT=${PORT:-6379}
[ -n "$REDIS_PASSWORD" ] || fail 1 "redis_password is required"
[ "${#REDIS_PASSWORD}" -ge 12 ] || fail 1 "redis_password must be at least 12 characters"
[[ $REDIS_PASSWORD =~ ^[A-Za-z0-9._~+=@%^-]+$ ]] || fail 1 "redis_password may only contain letters, digits and ._~+=@%^-"
[[ $MAXMEMORY =~ ^[0-9]+(kb|mb|gb)?$ ]] || fail 1 "maxmemory '$MAXMEMORY' must look like 256mb, 1gb or 0"
case $MAXMEMORY_POLICY in
  noeviction|allkeys-lru|allkeys-lfu|allkeys-random|volatile-lru|volatile-lfu|volatile-random|volatile-ttl) ;;
  *) fail 1 "maxmemory_policy '$MAXMEMORY_POLICY' is not a Redis eviction policy" ;;
esac
for a in $BIND_ADDRESS; do valid_ipv4 "$a" || fail 1 "bind_address: '$a' is not an IPv4 address"; done
{ [[ $PORT =~ ^[0-9]+$ ]] && (( PORT >= 1 && PORT <= 65535 )); } || fail 1 "port '$PORT' is not a port"

# ---- install and configure
pkg_install redis-server redis-tools
conf=$(cat <<CONF
# managed by provision-tui (redis installer); included from /etc/redis/redis.conf
bind $BIND_ADDRESS
port $PORT
protected-mode yes
maxmemory $MAXMEMORY
maxmemory-policy $MAXMEMORY_POLICY
include /etc/redis/provision-tui-auth.conf
CONF
)
changed=0
put /etc/redis/provision-tui.conf 0640 "$conf" && changed=1
put /etc/redis/provision-tui-auth.conf 0640 "requirepass $REDIS_PASSWORD" && changed=1
# for the health check on this server (root only)
put /etc/redis/provision-tui.pass 0600 "$REDIS_PASSWORD" || true
put /etc/redis/provision-tui.port 0644 "$PORT" || true
chown redis:redis /etc/redis/provision-tui.conf /etc/redis/provision-tui-auth.conf
# the last directive wins in redis.conf: our include goes at the very end
if [ "$(tail -n 1 /etc/redis/redis.conf)" != "include /etc/redis/provision-tui.conf" ]; then
  sed -i '\#^include /etc/redis/provision-tui.conf$#d' /etc/redis/redis.conf
  printf 'include /etc/redis/provision-tui.conf\n' >> /etc/redis/redis.conf
  changed=1
fi
systemctl is-enabled --quiet redis-server || systemctl enable --quiet redis-server
if [ "$changed" = 1 ] || ! systemctl is-active --quiet redis-server; then
  systemctl restart redis-server || fail 3 "redis-server did not start: $(journalctl -u redis-server -n 5 --no-pager 2>&1)"
fi

# ---- verify: PING with the password
pong=
for _ in $(seq 1 20); do
  pong=$(REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$PORT" --no-auth-warning ping 2>/dev/null || true)
  [ "$pong" = PONG ] && break
  sleep 0.5
done
[ "$pong" = PONG ] || fail 3 "redis does not answer PING with the password on port $PORT"
noauth=$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>&1 || true)
[[ $noauth == *NOAUTH* ]] || fail 3 "redis answers without a password"
if [ "$changed" = 1 ]; then echo "redis configured on $BIND_ADDRESS:$PORT"; else echo "redis already configured; nothing changed"; fi
