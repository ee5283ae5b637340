#!/usr/bin/env bash
# nginx upgrade: the newest Debian packages of nginx (security and point releases), a restart when
# something was upgraded, and the same check as the install. The configuration is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
fail() { local code=$1; shift; printf 'error: %s\n' "$*" >&2; exit "$code"; }

pkgs=(nginx nginx-common)
installed=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed && installed+=("$p")
done
[ "${#installed[@]}" -gt 0 ] || fail 1 "nginx is not installed here; install it first"
apt-get update -q || fail 2 "apt-get update failed"
before=$(dpkg-query -W -f='${Package} ${Version}\n' "${installed[@]}")
apt-get install -y -q --only-upgrade -o Dpkg::Options::=--force-confold "${installed[@]}" || fail 2 "apt-get upgrade of ${installed[*]} failed"
after=$(dpkg-query -W -f='${Package} ${Version}\n' "${installed[@]}")
if [ "$before" != "$after" ]; then
  echo "upgraded:"; diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed -n 's/^> /  /p'
  systemctl restart nginx || fail 3 "nginx did not restart after the upgrade"
else
  echo "nginx is already the newest version"
fi
ok=false
for _ in $(seq 1 30); do
  if curl -fs -o /dev/null http://127.0.0.1/; then ok=true; break; fi
  sleep 1
done
[ "$ok" = true ] || fail 3 "nginx does not work after the upgrade"
echo "nginx upgrade done"
