#!/usr/bin/env bash
# nginx: Debian's nginx with a default site for SERVER_NAME; optional HTTPS (self-signed or provided).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh

# ---- validate every input before touching the server
SERVER_NAME=${SERVER_NAME:-_}
ADMIN_EMAIL=${ADMIN_EMAIL:-}
ENABLE_SSL=${ENABLE_SSL:-false}
SSL_MODE=${SSL_MODE:-self_signed}
[[ $SERVER_NAME =~ ^(_|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$ ]] || fail 1 "server_name '$SERVER_NAME' is not a host name (or _)"
[[ $ADMIN_EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] || fail 1 "admin_email is required and must be an email address"
case $ENABLE_SSL in true|false) ;; *) fail 1 "enable_ssl must be true or false, got '$ENABLE_SSL'" ;; esac
case $SSL_MODE in self_signed|provided) ;; *) fail 1 "ssl_mode must be self_signed or provided, got '$SSL_MODE'" ;; esac
if [ "$ENABLE_SSL" = true ] && [ "$SSL_MODE" = provided ]; then
  [ -n "${SSL_CERTIFICATE:-}" ] || fail 1 "ssl_certificate is required when ssl_mode is provided"
  [ -n "${SSL_CERTIFICATE_KEY:-}" ] || fail 1 "ssl_certificate_key is required when ssl_mode is provided"
  command -v openssl >/dev/null || pkg_install openssl
  certcheck=$(mktemp -d); trap 'rm -rf "$certcheck"' EXIT
  (umask 077; printf '%s\n' "$SSL_CERTIFICATE" > "$certcheck/c.pem"; printf '%s\n' "$SSL_CERTIFICATE_KEY" > "$certcheck/k.pem")
  openssl x509 -noout -in "$certcheck/c.pem" 2>/dev/null || fail 1 "ssl_certificate is not a PEM certificate"
  openssl pkey -noout -in "$certcheck/k.pem" 2>/dev/null || fail 1 "ssl_certificate_key is not a PEM private key"
  [ "$(openssl x509 -noout -pubkey -in "$certcheck/c.pem" | sha256sum)" = "$(openssl pkey -pubout -in "$certcheck/k.pem" | sha256sum)" ] ||
    fail 1 "ssl_certificate_key does not belong to ssl_certificate"
fi

# ---- install
pkg_install nginx openssl curl
changed=0
SSL_DIR=/etc/ssl/provision-tui
site=$(cat <<CONF
# managed by provision-tui (nginx installer); admin: $ADMIN_EMAIL
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name $SERVER_NAME;
    root /var/www/provision-tui;
    index index.html;
    location / { try_files \$uri \$uri/ =404; }
}
CONF
)
if [ "$ENABLE_SSL" = true ]; then
  if [ "$SSL_MODE" = provided ]; then
    put "$SSL_DIR/nginx.crt" 0644 "$SSL_CERTIFICATE" && changed=1
    put "$SSL_DIR/nginx.key" 0600 "$SSL_CERTIFICATE_KEY" && changed=1
    rm -f "$SSL_DIR/nginx.self-signed"
  else
    cn=$SERVER_NAME; [ "$cn" = _ ] && cn=$(hostname)
    if [ ! -f "$SSL_DIR/nginx.self-signed" ] || [ "$(cat "$SSL_DIR/nginx.self-signed")" != "$cn $ADMIN_EMAIL" ]; then
      install -d -m 0755 "$SSL_DIR"
      openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$cn/emailAddress=$ADMIN_EMAIL" \
        -keyout "$SSL_DIR/nginx.key" -out "$SSL_DIR/nginx.crt" 2>/dev/null || fail 3 "openssl could not create a self-signed certificate"
      chmod 0600 "$SSL_DIR/nginx.key"
      printf '%s\n' "$cn $ADMIN_EMAIL" > "$SSL_DIR/nginx.self-signed"
      changed=1
    fi
  fi
  site+=$(cat <<CONF

server {
    listen 443 ssl default_server;
    listen [::]:443 ssl default_server;
    server_name $SERVER_NAME;
    ssl_certificate $SSL_DIR/nginx.crt;
    ssl_certificate_key $SSL_DIR/nginx.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root /var/www/provision-tui;
    index index.html;
    location / { try_files \$uri \$uri/ =404; }
}
CONF
)
else
  rm -f "$SSL_DIR/nginx.crt" "$SSL_DIR/nginx.key" "$SSL_DIR/nginx.self-signed"
fi
page=$(cat <<HTML
<!doctype html>
<html><head><meta charset="utf-8"><title>$SERVER_NAME</title></head>
<body><h1>$SERVER_NAME is served by nginx</h1>
<p>Provisioned by provision-tui. Contact: $ADMIN_EMAIL</p></body></html>
HTML
)
put /var/www/provision-tui/index.html 0644 "$page" && changed=1
put /etc/nginx/sites-available/provision-tui 0644 "$site" && changed=1
if [ "$(readlink /etc/nginx/sites-enabled/provision-tui 2>/dev/null)" != /etc/nginx/sites-available/provision-tui ]; then
  ln -sfn /etc/nginx/sites-available/provision-tui /etc/nginx/sites-enabled/provision-tui; changed=1
fi
if [ -e /etc/nginx/sites-enabled/default ]; then rm -f /etc/nginx/sites-enabled/default; changed=1; fi

if ! out=$(nginx -t 2>&1); then
  printf '%s\n' "$out" >&2
  fail 3 "nginx -t rejected the configuration"
fi
systemctl is-enabled --quiet nginx || systemctl enable --quiet nginx
if ! systemctl is-active --quiet nginx; then
  systemctl start nginx || fail 3 "nginx did not start: $(systemctl status nginx --no-pager 2>&1 | tail -n 5)"
elif [ "$changed" = 1 ]; then
  systemctl reload nginx || fail 3 "nginx reload failed"
fi

# ---- verify: our page (not the package's welcome page: a reload takes a moment to apply)
host=$SERVER_NAME; [ "$host" = _ ] && host=localhost
served() { curl -s -H "Host: $host" http://127.0.0.1/ 2>/dev/null | grep -c 'Provisioned by provision-tui' || true; }
ok=false
for i in $(seq 1 20); do
  if [ "$(served)" -ge 1 ]; then ok=true; break; fi
  # the package's own start can race our reload (binary upgrade on install): restart once
  [ "$i" = 10 ] && systemctl restart nginx
  sleep 0.5
done
[ "$ok" = true ] || fail 3 "nginx does not serve the provision-tui page on http://127.0.0.1/"
if [ "$ENABLE_SSL" = true ]; then
  code=$(curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/ || true)
  [ "$code" = 200 ] || fail 3 "nginx answers https://127.0.0.1/ with $code, expected 200"
fi
if [ "$changed" = 1 ]; then echo "nginx configured for $SERVER_NAME"; else echo "nginx already configured for $SERVER_NAME; nothing changed"; fi
