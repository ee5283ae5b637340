#!/usr/bin/env bash
# Prints a server's observable state: packages, configuration checksums, enabled/running units.
# Runs ON the server (the drivers pipe it through ssh). Two equal outputs = nothing changed.
set -uo pipefail
dirs=()
for d in /etc /var/www /srv /opt /usr/local/bin; do [ -d "$d" ] && dirs+=("$d"); done
dpkg-query -W -f='pkg ${Package} ${Version} ${db:Status-Abbrev}\n' | sort
find "${dirs[@]}" \( -name node_modules -o -name .cache -o -name .npm -o -name .pm2 -o -path '/etc/ssh/ssh_host_*' \) -prune \
  -o -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum 2>/dev/null | sed 's/^/file /'
find "${dirs[@]}" \( -name node_modules -o -name .npm -o -name .pm2 \) -prune -o -type l -printf 'link %p -> %l\n' 2>/dev/null | sort
systemctl list-unit-files --state=enabled --no-legend --plain 2>/dev/null | awk '{print "enabled " $1}' | sort
systemctl list-units --type=service --state=running --no-legend --plain 2>/dev/null | awk '{print "running " $1}' | sort
exit 0
