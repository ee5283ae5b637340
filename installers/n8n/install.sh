#!/usr/bin/env bash
# n8n: from the npm registry on Debian's Node.js, as a systemd service behind nginx.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
apt_install_opts=(--no-install-recommends)   # npm would pull in ~600 packages (docs, X and GL libraries)

# ---- validate every input before touching the server
DOMAIN=${DOMAIN:-}
ENCRYPTION_KEY=${ENCRYPTION_KEY:-}
PORT=${PORT:-5678}
N8N_VERSION=${N8N_VERSION:-1.64.0}
TIMEZONE=${TIMEZONE:-UTC}
{ [[ $DOMAIN =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] && [[ $DOMAIN != *..* ]]; } || fail 1 "domain '$DOMAIN' is not a domain name"
[ "${#ENCRYPTION_KEY}" -ge 24 ] || fail 1 "encryption_key is required and must be at least 24 characters"
[[ $ENCRYPTION_KEY =~ ^[A-Za-z0-9._~+/=-]+$ ]] || fail 1 "encryption_key may only contain letters, digits and ._~+/=-"
{ [[ $PORT =~ ^[0-9]+$ ]] && (( PORT <= 65535 )); } || fail 1 "port '$PORT' is not a port"
(( PORT >= 1024 )) || fail 1 "port $PORT is privileged; n8n runs as an unprivileged user behind nginx, choose 1024-65535"
[[ $N8N_VERSION =~ ^1\.[0-9]+\.[0-9]+$ ]] || fail 1 "n8n_version '$N8N_VERSION' must be an n8n 1.x release like 1.64.0"
[[ $TIMEZONE =~ ^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$ ]] || fail 1 "timezone '$TIMEZONE' is not a zone name"
[ ! -d /usr/share/zoneinfo ] || [ -f "/usr/share/zoneinfo/$TIMEZONE" ] || fail 1 "timezone '$TIMEZONE' is unknown"
# n8n refuses to start when its data was encrypted with another key
cfg=/var/lib/n8n/.n8n/config
if [ -f "$cfg" ] && command -v node >/dev/null; then
  stored=$(node -e 'try { process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).encryptionKey || "") } catch (e) {}' "$cfg")
  [ -z "$stored" ] || [ "$stored" = "$ENCRYPTION_KEY" ] || fail 1 "encryption_key differs from the key this n8n's data is encrypted with; use the original key"
fi

# ---- Node.js from Debian, the tool chain for native modules (sqlite3 builds from source here)
pkg_install nodejs npm libnode-dev python3 make g++ nginx curl ca-certificates
id n8n >/dev/null 2>&1 || useradd --system --home-dir /var/lib/n8n --create-home --shell /usr/sbin/nologin n8n
install -d -m 0755 /opt/n8n
have=$(node -e 'try { process.stdout.write(require("/opt/n8n/node_modules/n8n/package.json").version) } catch (e) {}')
if [ "$have" != "$N8N_VERSION" ]; then
  echo "installing n8n $N8N_VERSION from the npm registry (this takes several minutes)"
  printf '{"name":"n8n-host","private":true}\n' > /opt/n8n/package.json
  # native modules: build from source against Debian's Node headers (GitHub prebuilds are not required)
  if ! (cd /opt/n8n && npm_config_nodedir=/usr npm_config_build_from_source=sqlite3 \
        npm install --no-audit --no-fund --omit=dev --loglevel=error "n8n@$N8N_VERSION" > /opt/n8n/npm-install.log 2>&1); then
    tail -n 30 /opt/n8n/npm-install.log >&2
    unreachable=$(sed -n 's/.*network request to \(https\?:\/\/[^ ]*\) failed.*/\1/p' /opt/n8n/npm-install.log | head -n1)
    [ -z "$unreachable" ] || fail 2 "npm install n8n@$N8N_VERSION failed: this server cannot download $unreachable (n8n needs the npm registry and cdn.sheetjs.com)"
    fail 2 "npm install n8n@$N8N_VERSION failed (log: /opt/n8n/npm-install.log)"
  fi
  changed_bin=1
else
  changed_bin=0
fi
[ -x /opt/n8n/node_modules/.bin/n8n ] || fail 2 "n8n is not in /opt/n8n after npm install"

# ---- service
changed=0
envfile=$(cat <<ENV
N8N_ENCRYPTION_KEY=$ENCRYPTION_KEY
N8N_PORT=$PORT
N8N_LISTEN_ADDRESS=127.0.0.1
N8N_HOST=$DOMAIN
N8N_PROTOCOL=http
WEBHOOK_URL=http://$DOMAIN/
N8N_SECURE_COOKIE=false
GENERIC_TIMEZONE=$TIMEZONE
N8N_USER_FOLDER=/var/lib/n8n
N8N_DIAGNOSTICS_ENABLED=false
N8N_VERSION_NOTIFICATIONS_ENABLED=false
N8N_PERSONALIZATION_ENABLED=false
ENV
)
put /etc/n8n/n8n.env 0600 "$envfile" && changed=1
unit=$(cat <<UNIT
# managed by provision-tui (n8n installer)
[Unit]
Description=n8n workflow automation
After=network-online.target
Wants=network-online.target

[Service]
User=n8n
Group=n8n
EnvironmentFile=/etc/n8n/n8n.env
Environment=NODE_ENV=production
WorkingDirectory=/var/lib/n8n
ExecStart=/opt/n8n/node_modules/.bin/n8n start
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
)
if put /etc/systemd/system/n8n.service 0644 "$unit"; then systemctl daemon-reload; changed=1; fi
systemctl is-enabled --quiet n8n || systemctl enable --quiet n8n
if [ "$changed" = 1 ] || [ "$changed_bin" = 1 ] || ! systemctl is-active --quiet n8n; then
  systemctl restart n8n || fail 3 "n8n did not start: $(journalctl -u n8n -n 5 --no-pager 2>&1)"
fi

# ---- nginx in front
site=$(cat <<CONF
# managed by provision-tui (n8n installer)
server {
    listen 80;
    listen [::]:80;
    server_name $DOMAIN;
    client_max_body_size 16m;
    location / {
        proxy_pass http://127.0.0.1:$PORT;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_buffering off;
        proxy_read_timeout 3600s;
    }
}
CONF
)
nchanged=0
put /etc/nginx/sites-available/n8n 0644 "$site" && nchanged=1
if [ "$(readlink /etc/nginx/sites-enabled/n8n 2>/dev/null)" != /etc/nginx/sites-available/n8n ]; then
  ln -sfn /etc/nginx/sites-available/n8n /etc/nginx/sites-enabled/n8n; nchanged=1
fi
nginx -t >/dev/null 2>&1 || fail 3 "nginx -t rejects the n8n site: $(nginx -t 2>&1 | tail -n 2)"
systemctl is-enabled --quiet nginx || systemctl enable --quiet nginx
if ! systemctl is-active --quiet nginx; then systemctl start nginx || fail 3 "nginx did not start"
elif [ "$nchanged" = 1 ]; then systemctl reload nginx || fail 3 "nginx reload failed"; fi

# ---- verify: n8n answers /healthz directly and through nginx (the first start takes a while)
ok=false
for _ in $(seq 1 180); do
  if [ "$(curl -s -m 2 "http://127.0.0.1:$PORT/healthz" || true)" = '{"status":"ok"}' ]; then ok=true; break; fi
  sleep 1
done
[ "$ok" = true ] || fail 3 "n8n does not answer http://127.0.0.1:$PORT/healthz: $(journalctl -u n8n -n 8 --no-pager 2>&1)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $DOMAIN" http://127.0.0.1/healthz || true)
[ "$code" = 200 ] || fail 3 "nginx answers $code for http://$DOMAIN/healthz"
echo "n8n $N8N_VERSION ready at http://$DOMAIN/"
