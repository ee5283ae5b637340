#!/usr/bin/env bash
# node-app: stop and delete one app (its releases, env file and nginx site). pm2 and Node.js stay
# while other apps use them; with the last app gone, the pm2 unit goes too.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
APP_NAME=${APP_NAME:-app}
[[ $APP_NAME =~ ^[a-z][a-z0-9-]{0,30}$ ]] || fail 1 "app_name '$APP_NAME' must match [a-z][a-z0-9-]*"
base=/srv/node-apps
if command -v pm2 >/dev/null && id nodeapp >/dev/null 2>&1; then
  runuser -u nodeapp -- env PM2_HOME="$base/.pm2" HOME="$base" pm2 delete "$APP_NAME" >/dev/null 2>&1 || true
  runuser -u nodeapp -- env PM2_HOME="$base/.pm2" HOME="$base" pm2 save --force >/dev/null 2>&1 || true
fi
rm -rf "${base:?}/$APP_NAME"
if [ -e "/etc/nginx/sites-available/node-app-$APP_NAME" ]; then
  rm -f "/etc/nginx/sites-available/node-app-$APP_NAME" "/etc/nginx/sites-enabled/node-app-$APP_NAME"
  systemctl reload nginx 2>/dev/null || true
fi
if [ -z "$(find "$base" -mindepth 2 -maxdepth 2 -name port 2>/dev/null)" ]; then
  systemctl disable --now pm2-nodeapp 2>/dev/null || true
  rm -f /etc/systemd/system/pm2-nodeapp.service
  systemctl daemon-reload
  rm -rf "$base/.pm2"
  echo "last app removed: pm2 unit removed"
fi
echo "$APP_NAME removed"
