#!/usr/bin/env bash
# docker: Debian's docker.io (+ docker-compose), storage driver, optional docker group member.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh

# ---- validate every input before touching the server
STORAGE_DRIVER=${STORAGE_DRIVER:-overlay2}
INSTALL_COMPOSE=${INSTALL_COMPOSE:-true}
DOCKER_USER=${DOCKER_USER:-}
case $STORAGE_DRIVER in overlay2|fuse-overlayfs|vfs) ;; *) fail 1 "storage_driver must be overlay2, fuse-overlayfs or vfs, got '$STORAGE_DRIVER'" ;; esac
case $INSTALL_COMPOSE in true|false) ;; *) fail 1 "install_compose must be true or false" ;; esac
if [ -n "$DOCKER_USER" ]; then
  [[ $DOCKER_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || fail 1 "docker_user '$DOCKER_USER' is not a user name"
  id "$DOCKER_USER" >/dev/null 2>&1 || fail 1 "docker_user '$DOCKER_USER' does not exist on this server (create it first, e.g. with base-setup)"
fi

# ---- install
pkgs=(docker.io)
[ "$STORAGE_DRIVER" = fuse-overlayfs ] && pkgs+=(fuse-overlayfs)
[ "$INSTALL_COMPOSE" = true ] && pkgs+=(docker-compose)
pkg_install "${pkgs[@]}"
changed=0
put /etc/docker/daemon.json 0644 "$(printf '{\n  "storage-driver": "%s",\n  "log-driver": "local"\n}' "$STORAGE_DRIVER")" && changed=1
systemctl is-enabled --quiet docker || systemctl enable --quiet docker
if [ "$changed" = 1 ] || ! systemctl is-active --quiet docker; then
  systemctl reset-failed docker docker.socket 2>/dev/null || true
  if ! systemctl restart docker; then
    journalctl -u docker -n 8 --no-pager >&2 || true
    fail 3 "dockerd did not start with storage driver $STORAGE_DRIVER (try storage_driver=vfs where overlay2 is not supported)"
  fi
fi
if [ -n "$DOCKER_USER" ] && ! id -nG "$DOCKER_USER" | tr ' ' '\n' | grep -qx docker; then
  usermod -aG docker "$DOCKER_USER" || fail 3 "cannot add $DOCKER_USER to the docker group"
  echo "$DOCKER_USER added to the docker group"
fi

# ---- verify
driver=
for _ in $(seq 1 30); do
  driver=$(docker info --format '{{.Driver}}' 2>/dev/null || true)
  [ -n "$driver" ] && break
  sleep 0.5
done
[ -n "$driver" ] || fail 3 "docker does not answer (docker info failed)"
[ "$driver" = "$STORAGE_DRIVER" ] || fail 3 "docker runs with storage driver $driver instead of $STORAGE_DRIVER"
if [ "$INSTALL_COMPOSE" = true ]; then docker-compose version --short >/dev/null 2>&1 || fail 3 "docker-compose does not run"; fi
echo "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null) ready (storage driver $driver)"
