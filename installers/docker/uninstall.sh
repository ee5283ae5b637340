#!/usr/bin/env bash
# docker: remove the engine, compose, and ALL images, containers and volumes.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
mapfile -t pkgs < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' docker.io docker-compose containerd runc fuse-overlayfs 2>/dev/null | awk '/^[ir]/{print $2}')
if [ "${#pkgs[@]}" -gt 0 ]; then
  systemctl stop docker.socket docker containerd 2>/dev/null || true
  apt_get purge -y -q "${pkgs[@]}" || fail 2 "apt-get purge ${pkgs[*]} failed"
  apt_get autoremove -y -q --purge || true
fi
rm -rf /etc/docker /var/lib/docker /var/lib/containerd /run/docker.sock
echo "docker removed"
