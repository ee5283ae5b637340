#!/usr/bin/env bash
# caddy: Debian's Caddy as a reverse proxy DOMAIN -> UPSTREAM_HOST:UPSTREAM_PORT.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
# ptui:include net.sh

# ---- validate every input before touching the server
DOMAIN=${DOMAIN:-}
UPSTREAM_PORT=${UPSTREAM_PORT:-}
UPSTREAM_HOST=${UPSTREAM_HOST:-127.0.0.1}
TLS=${TLS:-acme}
ACME_EMAIL=${ACME_EMAIL:-}
{ [[ $DOMAIN =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] && [[ $DOMAIN != *..* ]]; } || fail 1 "domain '$DOMAIN' is not a domain name"
{ [[ $UPSTREAM_PORT =~ ^[0-9]+$ ]] && (( UPSTREAM_PORT >= 1 && UPSTREAM_PORT <= 65535 )); } || fail 1 "upstream_port '$UPSTREAM_PORT' is not a port"
if [[ $UPSTREAM_HOST =~ ^[0-9.]+$ ]]; then
  [[ $UPSTREAM_HOST =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || fail 1 "upstream_host '$UPSTREAM_HOST' is not an IPv4 address"
  for o in "${BASH_REMATCH[@]:1}"; do (( 10#$o <= 255 )) || fail 1 "upstream_host '$UPSTREAM_HOST' is not an IPv4 address"; done
else
  [[ $UPSTREAM_HOST =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || fail 1 "upstream_host '$UPSTREAM_HOST' is not a host name"
fi
case $TLS in acme|internal|off) ;; *) fail 1 "tls must be acme, internal or off, got '$TLS'" ;; esac
if [ -n "$ACME_EMAIL" ] && ! [[ $ACME_EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]]; then fail 1 "acme_email is not an email address"; fi
for p in 80 443; do
  owner=$(port_owner "$p")
  [ -z "$owner" ] || [ "$owner" = caddy ] || fail 3 "port $p is already used by $owner; remove it or put Caddy elsewhere"
done

# ---- install and configure
pkg_install caddy curl
case $TLS in
  off) site="http://$DOMAIN"; tls_line= ;;
  internal) site=$DOMAIN; tls_line="    tls internal" ;;
  acme) site=$DOMAIN; tls_line= ;;
esac
global="{"
[ "$TLS" = acme ] && [ -n "$ACME_EMAIL" ] && global+=$'\n'"    email $ACME_EMAIL"
global+=$'\n}'
caddyfile=$(cat <<CONF
# managed by provision-tui (caddy installer)
$global

$site {
$tls_line
    reverse_proxy $UPSTREAM_HOST:$UPSTREAM_PORT
}
CONF
)
changed=0
put /etc/caddy/Caddyfile 0644 "$caddyfile" && changed=1
if ! out=$(caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile 2>&1); then
  printf '%s\n' "$out" | tail -n 5 >&2
  fail 3 "caddy rejects the generated Caddyfile"
fi
systemctl is-enabled --quiet caddy || systemctl enable --quiet caddy
if ! systemctl is-active --quiet caddy; then
  systemctl start caddy || fail 3 "caddy did not start: $(journalctl -u caddy -n 5 --no-pager 2>&1)"
elif [ "$changed" = 1 ]; then
  systemctl reload caddy || fail 3 "caddy reload failed: $(journalctl -u caddy -n 5 --no-pager 2>&1)"
fi

# ---- verify: the proxy answers for the domain (any HTTP status from the upstream is fine)
if [ "$TLS" = off ]; then url="http://$DOMAIN/"; args=(--resolve "$DOMAIN:80:127.0.0.1"); else url="https://$DOMAIN/"; args=(-k --resolve "$DOMAIN:443:127.0.0.1"); fi
code=000
if [ "$TLS" != acme ]; then
  for _ in $(seq 1 20); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "${args[@]}" "$url" || true)
    [ "$code" != 000 ] && [ "$code" != 502 ] && break
    sleep 0.5
  done
  case $code in
    000) fail 3 "caddy does not answer $url" ;;
    502) echo "warning: caddy answers but the upstream $UPSTREAM_HOST:$UPSTREAM_PORT does not (502); start your app" ;;
    *) echo "caddy proxies $url -> $UPSTREAM_HOST:$UPSTREAM_PORT (HTTP $code)" ;;
  esac
else
  echo "caddy proxies https://$DOMAIN -> $UPSTREAM_HOST:$UPSTREAM_PORT; the certificate is requested from Let's Encrypt in the background"
fi
