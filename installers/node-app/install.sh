#!/usr/bin/env bash
# node-app: deploy a Node.js app from git under pm2 (systemd unit pm2-nodeapp), optional nginx proxy.
# Also the upgrade script: it deploys the branch's newest commit as a new release, keeps the
# previous release, and rolls back when the new one fails its health check.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
apt_install_opts=(--no-install-recommends)   # npm would pull in ~600 packages (docs, X and GL libraries)

# ---- validate every input before touching the server
APP_NAME=${APP_NAME:-app}
REPO_URL=${REPO_URL:-}
BRANCH=${BRANCH:-main}
BUILD_COMMAND=${BUILD_COMMAND-npm install --omit=dev --no-audit --no-fund}
START_COMMAND=${START_COMMAND:-npm start}
PORT=${PORT:-3000}
PORT_RANGE_START=${PORT_RANGE_START:-3000}
PORT_RANGE_END=${PORT_RANGE_END:-3999}
HEALTH_PATH=${HEALTH_PATH:-/}
ENV_VARS=${ENV_VARS:-}
ENABLE_PROXY=${ENABLE_PROXY:-false}
DOMAIN=${DOMAIN:-}
ACTION=${PROVISION_TUI_ACTION:-install}

[[ $APP_NAME =~ ^[a-z][a-z0-9-]{0,30}$ ]] || fail 1 "app_name '$APP_NAME' must match [a-z][a-z0-9-]*"
[[ $REPO_URL =~ ^((https?|git|ssh)://[^[:space:]]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^[:space:]]+)$ ]] || fail 1 "repo_url '$REPO_URL' is not a git URL"
{ [[ $BRANCH =~ ^[A-Za-z0-9._/-]+$ ]] && [[ $BRANCH != -* ]]; } || fail 1 "branch '$BRANCH' is not a branch name"
[ -n "$START_COMMAND" ] || fail 1 "start_command is required"
for v in PORT PORT_RANGE_START PORT_RANGE_END; do
  { [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} >= 1 && ${!v} <= 65535 )); } || fail 1 "${v,,} '${!v}' is not a port"
done
(( PORT_RANGE_START <= PORT_RANGE_END )) || fail 1 "port_range_start $PORT_RANGE_START is above port_range_end $PORT_RANGE_END"
(( PORT >= PORT_RANGE_START && PORT <= PORT_RANGE_END )) || fail 1 "port $PORT is outside the allowed range $PORT_RANGE_START-$PORT_RANGE_END"
[[ $HEALTH_PATH =~ ^/[A-Za-z0-9._~/?=\&%-]*$ ]] || fail 1 "health_path '$HEALTH_PATH' is not a URL path"
lineno=0
if [ -n "$ENV_VARS" ]; then
  rest=$ENV_VARS
  while [ -n "$rest" ]; do
    line=${rest%%$'\n'*}
    if [[ $rest == *$'\n'* ]]; then rest=${rest#*$'\n'}; else rest=; fi
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    [ -z "$line" ] && continue
    [[ $line == \#* ]] && continue
    [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || fail 1 "env_vars line $lineno is not KEY=VALUE (the value is not shown)"
    case ${line%%=*} in PORT|NODE_ENV|PM2_HOME|PATH|HOME) fail 1 "env_vars line $lineno sets ${line%%=*}, which the installer manages" ;; esac
  done
fi
case $ENABLE_PROXY in true|false) ;; *) fail 1 "enable_proxy must be true or false" ;; esac
if [ "$ENABLE_PROXY" = true ]; then
  [[ $DOMAIN =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] || fail 1 "domain '$DOMAIN' is not a domain name"
fi
base=/srv/node-apps
appdir=$base/$APP_NAME
# another app of ours already on this port?
for f in "$base"/*/port; do
  [ -f "$f" ] || continue
  [ "$f" = "$appdir/port" ] && continue
  [ "$(cat "$f")" = "$PORT" ] && fail 1 "port $PORT is already used by app $(basename "$(dirname "$f")")"
done

# ---- runtime: Debian's nodejs/npm/git, pm2 from the npm registry, one app user, one pm2 unit
pkg_install nodejs npm git curl ca-certificates
if ! command -v pm2 >/dev/null; then
  echo "installing pm2 from the npm registry"
  npm install -g --no-audit --no-fund pm2@5 >/dev/null 2>&1 || fail 2 "npm install -g pm2 failed (is the npm registry reachable?)"
fi
PM2=$(command -v pm2) || fail 2 "pm2 is not on PATH after installing it"
id nodeapp >/dev/null 2>&1 || useradd --system --home-dir "$base" --create-home --shell /usr/sbin/nologin nodeapp
install -d -m 0755 -o nodeapp -g nodeapp "$base" "$appdir" "$appdir/releases"
unit=$(cat <<UNIT
# managed by provision-tui (node-app installer)
[Unit]
Description=pm2 process manager for apps deployed by provision-tui
After=network-online.target
Wants=network-online.target

[Service]
Type=forking
User=nodeapp
Environment=PM2_HOME=$base/.pm2
Environment=PATH=/usr/local/bin:/usr/bin:/bin
PIDFile=$base/.pm2/pm2.pid
ExecStart=$PM2 resurrect
ExecReload=$PM2 reload all
ExecStop=$PM2 kill
Restart=on-failure
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
)
if put /etc/systemd/system/pm2-nodeapp.service 0644 "$unit"; then systemctl daemon-reload; fi
systemctl is-enabled --quiet pm2-nodeapp || systemctl enable --quiet pm2-nodeapp
systemctl is-active --quiet pm2-nodeapp || systemctl start pm2-nodeapp || fail 3 "pm2-nodeapp did not start: $(journalctl -u pm2-nodeapp -n 5 --no-pager 2>&1)"
pm2() { runuser -u nodeapp -- env PM2_HOME="$base/.pm2" HOME="$base" PATH=/usr/local/bin:/usr/bin:/bin "$PM2" "$@"; }
as_app() { runuser -u nodeapp -- env -i HOME="$base" PATH=/usr/local/bin:/usr/bin:/bin "$@"; }

# ---- app configuration (env file 0600, pm2 process file): rewritten only when different
changed=0
put "$appdir/env" 0600 "$ENV_VARS" && changed=1
chown nodeapp:nodeapp "$appdir/env"
put "$appdir/port" 0644 "$PORT" && changed=1
# the process file is JSON written by node itself, so that no value needs shell quoting
procfile=$(APP_NAME=$APP_NAME START_COMMAND=$START_COMMAND PORT=$PORT APPDIR=$appdir ENVFILE=$appdir/env node -e '
  const fs = require("fs");
  const env = { NODE_ENV: "production", PORT: process.env.PORT };
  for (const raw of fs.readFileSync(process.env.ENVFILE, "utf8").split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (!line || line.startsWith("#")) continue;
    const i = line.indexOf("=");
    env[line.slice(0, i)] = line.slice(i + 1);
  }
  const app = { name: process.env.APP_NAME, cwd: process.env.APPDIR + "/current", script: "/bin/sh",
    args: ["-c", "exec " + process.env.START_COMMAND], interpreter: "none", env, autorestart: true,
    max_restarts: 5, min_uptime: 3000, kill_timeout: 5000, time: true };
  process.stdout.write(JSON.stringify({ apps: [app] }, null, 2));') || fail 2 "node could not write the pm2 process file"
put "$appdir/pm2.json" 0600 "$procfile" && changed=1
chown nodeapp:nodeapp "$appdir/pm2.json"

# ---- the release: the branch's newest commit
remote_sha=$(as_app git ls-remote "$REPO_URL" "refs/heads/$BRANCH" 2>/dev/null | cut -f1) || true
[ -n "$remote_sha" ] || fail 3 "cannot read branch $BRANCH of $REPO_URL (wrong URL or branch, or no access)"
current=$(readlink "$appdir/current" 2>/dev/null || true)
current_sha=$(cat "$current/.provision-tui-sha" 2>/dev/null || true)
deployed=0
export_app_env() {   # exports every KEY=VALUE line of ENV_VARS (call in a subshell)
  local rest=$ENV_VARS line
  while [ -n "$rest" ]; do
    line=${rest%%$'\n'*}
    if [[ $rest == *$'\n'* ]]; then rest=${rest#*$'\n'}; else rest=; fi
    line=${line%$'\r'}
    [ -z "$line" ] || [[ $line == \#* ]] && continue
    export "${line?}"
  done
  export NODE_ENV=production PORT
}
healthy() {
  local code
  for _ in $(seq 1 60); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT$HEALTH_PATH" || true)
    case $code in 2??|3??) return 0 ;; esac
    sleep 0.5
  done
  echo "http://127.0.0.1:$PORT$HEALTH_PATH answers ${code:-nothing}" >&2
  return 1
}
switch_to() {   # point current at a release and (re)start the app
  ln -sfn "$1" "$appdir/current.new" && mv -Tf "$appdir/current.new" "$appdir/current"
  pm2 startOrReload "$appdir/pm2.json" --update-env >/dev/null || return 1
  pm2 save --force >/dev/null || true
}
if [ "$remote_sha" != "$current_sha" ]; then
  release=$appdir/releases/$(date -u +%Y%m%d%H%M%S)-${remote_sha:0:12}
  echo "deploying $BRANCH @ ${remote_sha:0:12} to $release"
  # shallow when the server supports it (dumb HTTP servers do not): then a full clone
  if ! as_app git clone --quiet --depth 1 --branch "$BRANCH" "$REPO_URL" "$release" 2>/dev/null; then
    rm -rf "$release"
    as_app git clone --quiet --branch "$BRANCH" "$REPO_URL" "$release" || { rm -rf "$release"; fail 2 "git clone of $REPO_URL ($BRANCH) failed"; }
  fi
  got=$(as_app git -C "$release" rev-parse HEAD)
  printf '%s\n' "$got" > "$release/.provision-tui-sha"; chown nodeapp:nodeapp "$release/.provision-tui-sha"
  if [ -n "$BUILD_COMMAND" ]; then
    echo "build: $BUILD_COMMAND"
    # the build sees the app's environment (exported here, so no value lands in an argv)
    if ! (cd "$release" && export_app_env && runuser -u nodeapp -- env HOME="$base" PATH=/usr/local/bin:/usr/bin:/bin sh -c "$BUILD_COMMAND"); then
      rm -rf "$release"
      fail 2 "the build command failed; the running release was not touched"
    fi
  fi
  previous=$current
  switch_to "$release" || true
  if ! healthy; then
    if [ -n "$previous" ] && [ -d "$previous" ]; then
      echo "the new release failed its health check; rolling back to $(basename "$previous")" >&2
      switch_to "$previous" || true
      mv "$release" "$release.failed"
      healthy || fail 3 "the rollback to $(basename "$previous") is not healthy either"
      fail 3 "release ${remote_sha:0:12} failed its health check and was rolled back to $(basename "$previous")"
    fi
    fail 3 "the app does not answer on port $PORT$HEALTH_PATH (see: pm2 logs $APP_NAME)"
  fi
  [ -n "$previous" ] && ln -sfn "$previous" "$appdir/previous"
  # keep the current and the previous release, drop the rest
  for r in "$appdir"/releases/*; do
    [ "$r" = "$release" ] || [ "$r" = "$previous" ] || rm -rf "$r"
  done
  deployed=1
  echo "release ${remote_sha:0:12} is live"
elif [ "$changed" = 1 ] || ! pm2 describe "$APP_NAME" >/dev/null 2>&1; then
  echo "configuration changed; restarting $APP_NAME"
  pm2 startOrReload "$appdir/pm2.json" --update-env >/dev/null || fail 3 "pm2 could not start $APP_NAME"
  pm2 save --force >/dev/null || true
  healthy || fail 3 "the app does not answer on port $PORT$HEALTH_PATH after the restart"
fi

# ---- optional nginx reverse proxy
site=/etc/nginx/sites-available/node-app-$APP_NAME
if [ "$ENABLE_PROXY" = true ]; then
  pkg_install nginx
  conf=$(cat <<CONF
# managed by provision-tui (node-app installer)
server {
    listen 80;
    listen [::]:80;
    server_name $DOMAIN;
    location / {
        proxy_pass http://127.0.0.1:$PORT;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection "upgrade";
    }
}
CONF
)
  pchanged=0
  put "$site" 0644 "$conf" && pchanged=1
  if [ "$(readlink "/etc/nginx/sites-enabled/node-app-$APP_NAME" 2>/dev/null)" != "$site" ]; then
    ln -sfn "$site" "/etc/nginx/sites-enabled/node-app-$APP_NAME"; pchanged=1
  fi
  nginx -t >/dev/null 2>&1 || fail 3 "nginx -t rejects the proxy configuration: $(nginx -t 2>&1 | tail -n 2)"
  systemctl is-enabled --quiet nginx || systemctl enable --quiet nginx
  if ! systemctl is-active --quiet nginx; then systemctl start nginx || fail 3 "nginx did not start"
  elif [ "$pchanged" = 1 ]; then systemctl reload nginx || fail 3 "nginx reload failed"; fi
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $DOMAIN" "http://127.0.0.1$HEALTH_PATH" || true)
  case $code in 2??|3??) ;; *) fail 3 "nginx answers $code for http://$DOMAIN$HEALTH_PATH" ;; esac
elif [ -e "$site" ]; then
  rm -f "$site" "/etc/nginx/sites-enabled/node-app-$APP_NAME"
  systemctl reload nginx 2>/dev/null || true
fi
if [ "$deployed" = 0 ] && [ "$changed" = 0 ]; then echo "$APP_NAME is up to date (${current_sha:0:12}); nothing changed"; fi
echo "$APP_NAME ($ACTION) ok on port $PORT"
