#!/usr/bin/env bash
# compose-app: `docker compose down` for one app and remove its checkout and .env. Named volumes
# are kept (they hold the app's data); `docker volume ls` lists them.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
APP_NAME=${APP_NAME:-}
[[ $APP_NAME =~ ^[a-z][a-z0-9-]{0,30}$ ]] || fail 1 "app_name '$APP_NAME' must match [a-z][a-z0-9-]*"
base=/srv/compose-apps/$APP_NAME
if [ -d "$base/repo" ] && command -v docker >/dev/null; then
  if docker compose version >/dev/null 2>&1; then compose_cmd=(docker compose); else compose_cmd=(docker-compose); fi
  file=$(cat "$base/compose_file" 2>/dev/null || echo compose.yaml)
  (cd "$base/repo" && "${compose_cmd[@]}" -p "$APP_NAME" -f "$file" --env-file "$base/.env" down --remove-orphans) ||
    fail 2 "docker compose down of $APP_NAME failed"
fi
rm -rf "${base:?}"
if [ -z "$(ls -A /srv/compose-apps 2>/dev/null)" ]; then
  rm -f /usr/local/sbin/ptui-compose-health; rmdir /srv/compose-apps 2>/dev/null || true
fi
echo "$APP_NAME removed (named volumes kept)"
