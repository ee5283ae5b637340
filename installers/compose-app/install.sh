#!/usr/bin/env bash
# compose-app: a Docker Compose project from git, `docker compose up -d`. Also the upgrade script:
# a new commit (or an upgrade) pulls the images, rebuilds and recreates what changed, and a deploy
# that fails its health check is rolled back to the previous commit.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh

# ---- validate every input before touching the server
APP_NAME=${APP_NAME:-}
REPO_URL=${REPO_URL:-}
BRANCH=${BRANCH:-main}
COMPOSE_FILE=${COMPOSE_FILE:-compose.yaml}
ENV_VARS=${ENV_VARS:-}
HEALTH_URL=${HEALTH_URL:-}
REGISTRY=${REGISTRY:-}
REGISTRY_USERNAME=${REGISTRY_USERNAME:-}
REGISTRY_PASSWORD=${REGISTRY_PASSWORD:-}
ACTION=${PROVISION_TUI_ACTION:-install}
[[ $APP_NAME =~ ^[a-z][a-z0-9-]{0,30}$ ]] || fail 1 "app_name '$APP_NAME' must match [a-z][a-z0-9-]* (at most 31 characters)"
[[ $REPO_URL =~ ^(https?|ssh)://[^[:space:]]+$ || $REPO_URL =~ ^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^[:space:]]+$ ]] ||
  fail 1 "repo_url '$REPO_URL' is not a git URL (https://, http://, ssh:// or user@host:path)"
[[ $BRANCH =~ ^[A-Za-z0-9._/-]+$ && $BRANCH != *..* && $BRANCH != -* ]] || fail 1 "branch '$BRANCH' is not a valid branch name"
[[ $COMPOSE_FILE =~ ^[A-Za-z0-9._/-]+$ && $COMPOSE_FILE != /* && $COMPOSE_FILE != *..* ]] ||
  fail 1 "compose_file '$COMPOSE_FILE' must be a relative path inside the repository"
[ -z "$HEALTH_URL" ] || [[ $HEALTH_URL =~ ^https?://[^[:space:]]+$ ]] || fail 1 "health_url '$HEALTH_URL' is not an http(s) URL"
mapfile -t env_lines <<< "$ENV_VARS"
for i in "${!env_lines[@]}"; do
  line=${env_lines[$i]}
  [ -z "$line" ] || [[ $line == \#* ]] || [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] ||
    fail 1 "env_vars line $((i + 1)) is not KEY=VALUE (the line is not shown: it may hold a secret)"
done
if [ -n "$REGISTRY" ]; then
  [[ $REGISTRY =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] || fail 1 "registry '$REGISTRY' is not a host name (with an optional :port)"
  if [ -z "$REGISTRY_USERNAME" ] || [ -z "$REGISTRY_PASSWORD" ]; then fail 1 "registry $REGISTRY needs registry_username and registry_password"; fi
fi
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then fail 1 "docker is not running here; install the docker installer first"; fi
if docker compose version >/dev/null 2>&1; then compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then compose_cmd=(docker-compose)
else fail 1 "neither 'docker compose' nor docker-compose is installed; install the docker installer first"
fi

base=/srv/compose-apps/$APP_NAME
repo=$base/repo
compose() { (cd "$repo" && "${compose_cmd[@]}" -p "$APP_NAME" -f "$COMPOSE_FILE" --env-file "$base/.env" "$@"); }

# ---- the health checker (also the manifest's health check: every app on this server)
put /usr/local/sbin/ptui-compose-health 0755 "$(cat <<'CHECK'
#!/usr/bin/env bash
# provision-tui compose-app: exit 0 when the app(s) work: the health URL answers 2xx, or, without
# one, every service of the project is running. Usage: ptui-compose-health [APP_NAME]
set -uo pipefail
rc=0
for d in /srv/compose-apps/${1:-*}/; do
  [ -f "$d/compose_file" ] || continue
  name=$(basename "$d")
  if [ -s "$d/health_url" ]; then
    curl -fsS -m 5 -o /dev/null "$(cat "$d/health_url")" || { echo "$name: $(cat "$d/health_url") does not answer 2xx"; rc=1; }
  else
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$name")
    [ -n "$ids" ] || { echo "$name: no containers"; rc=1; continue; }
    bad=$(docker inspect -f '{{.Name}} {{.State.Status}} {{.RestartCount}}' $ids | awk '$2 != "running" || $3 > 0')
    [ -z "$bad" ] || { echo "$name: not running: $bad"; rc=1; }
  fi
done
exit "$rc"
CHECK
)" || true

# ---- the code
pkg_install git
install -d -m 0755 "$base"
if [ ! -d "$repo/.git" ]; then
  echo "cloning $REPO_URL ($BRANCH)"
  git clone -q --branch "$BRANCH" --single-branch -- "$REPO_URL" "$repo" 2>&1 || fail 2 "git clone of $REPO_URL ($BRANCH) failed"
else
  [ "$(git -C "$repo" remote get-url origin)" = "$REPO_URL" ] || git -C "$repo" remote set-url origin "$REPO_URL"
  git -C "$repo" fetch -q --no-write-fetch-head origin "+refs/heads/$BRANCH:refs/remotes/origin/$BRANCH" 2>&1 || fail 2 "git fetch of $REPO_URL ($BRANCH) failed"
fi
target=$(git -C "$repo" rev-parse "refs/remotes/origin/$BRANCH")
[ -f "$repo/$COMPOSE_FILE" ] || git -C "$repo" cat-file -e "$target:$COMPOSE_FILE" 2>/dev/null ||
  fail 1 "compose_file $COMPOSE_FILE does not exist on branch $BRANCH of $REPO_URL"
deployed=$(cat "$base/deployed" 2>/dev/null || true)

env_changed=false
put "$base/.env" 0600 "$ENV_VARS" && env_changed=true
put "$base/compose_file" 0644 "$COMPOSE_FILE" || true
if [ -n "$HEALTH_URL" ]; then put "$base/health_url" 0644 "$HEALTH_URL" || true; else rm -f "$base/health_url"; fi

deploy() {   # deploy COMMIT PULL: check it out and bring the project up (recreating what changed)
  git -C "$repo" -c advice.detachedHead=false checkout -q --force "$1" || fail 2 "git checkout $1 failed"
  if [ "$2" = true ]; then
    if [ -n "$REGISTRY" ]; then
      docker login "$REGISTRY" -u "$REGISTRY_USERNAME" --password-stdin <<< "$REGISTRY_PASSWORD" >/dev/null ||
        fail 2 "docker login to $REGISTRY failed: check registry_username and registry_password"
    fi
    compose pull -q 2>&1 || fail 2 "pulling the images failed (a private registry needs registry, registry_username and registry_password)"
  fi
  compose up -d --build --remove-orphans 2>&1 || return 1
}
healthy() {   # up to 30 s: a container that crashes restarts or exits within that time
  local _
  for _ in $(seq 1 15); do
    sleep 2
    /usr/local/sbin/ptui-compose-health "$APP_NAME" >/dev/null 2>&1 && return 0
  done
  /usr/local/sbin/ptui-compose-health "$APP_NAME" || true
  return 1
}

if [ "$target" = "$deployed" ] && [ "$ACTION" != upgrade ] && [ "$env_changed" = false ] &&
   /usr/local/sbin/ptui-compose-health "$APP_NAME" >/dev/null 2>&1; then
  echo "$APP_NAME is at ${target:0:12} and healthy: nothing to do"
  exit 0
fi

echo "deploying $APP_NAME at ${target:0:12}${deployed:+ (was ${deployed:0:12})}"
if deploy "$target" true && healthy; then
  if [ "$target" != "$deployed" ]; then
    [ -z "$deployed" ] || printf '%s\n' "$deployed" > "$base/previous"
    printf '%s\n' "$target" > "$base/deployed"
  fi
  echo "$APP_NAME is up at ${target:0:12}"
  exit 0
fi
if [ -n "$deployed" ] && [ "$deployed" != "$target" ]; then
  echo "${target:0:12} is not healthy: rolling back to ${deployed:0:12}"
  if ! deploy "$deployed" false || ! healthy; then
    fail 3 "${target:0:12} failed its health check and the rollback to ${deployed:0:12} did not come up either"
  fi
  fail 3 "${target:0:12} failed its health check; rolled back to ${deployed:0:12}, which is running"
fi
fail 3 "$APP_NAME at ${target:0:12} is not healthy; see: cd $repo && ${compose_cmd[*]} -p $APP_NAME logs"
