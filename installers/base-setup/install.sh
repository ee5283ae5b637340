#!/usr/bin/env bash
# base-setup: the server baseline. Inputs arrive as upper-case environment variables.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
is_bool() { [ "$1" = true ] || [ "$1" = false ]; }

# ---- validate every input before touching the server
SSH_PUBLIC_KEY=${SSH_PUBLIC_KEY:-}
SSH_USER=${SSH_USER:-root}
DISABLE_PASSWORD_AUTH=${DISABLE_PASSWORD_AUTH:-true}
ENABLE_FIREWALL=${ENABLE_FIREWALL:-true}
EXTRA_PORTS=${EXTRA_PORTS:-}
APT_UPGRADE=${APT_UPGRADE:-true}
TIMEZONE=${TIMEZONE:-UTC}
HOSTNAME_WANTED=${HOST_NAME:-}
INSTALL_FAIL2BAN=${INSTALL_FAIL2BAN:-false}
UNATTENDED_UPGRADES=${UNATTENDED_UPGRADES:-false}

[ -n "$SSH_PUBLIC_KEY" ] || fail 1 "ssh_public_key is required"
case $SSH_PUBLIC_KEY in *$'\n'*|*$'\r'*) fail 1 "ssh_public_key must be a single line" ;; esac
keycheck=$(mktemp); trap 'rm -f "$keycheck"' EXIT
printf '%s\n' "$SSH_PUBLIC_KEY" > "$keycheck"
ssh-keygen -l -f "$keycheck" >/dev/null 2>&1 || fail 1 "ssh_public_key is not a valid OpenSSH public key"
[[ $SSH_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || fail 1 "ssh_user '$SSH_USER' is not a valid user name"
for b in DISABLE_PASSWORD_AUTH ENABLE_FIREWALL APT_UPGRADE INSTALL_FAIL2BAN UNATTENDED_UPGRADES; do
  is_bool "${!b}" || fail 1 "${b,,} must be true or false, got '${!b}'"
done
ports=(22/tcp 80/tcp 443/tcp)
if [ -n "$EXTRA_PORTS" ]; then
  rest=$EXTRA_PORTS
  while [ -n "$rest" ]; do
    p=${rest%%,*}
    if [[ $rest == *,* ]]; then rest=${rest#*,}; else rest=; fi
    [[ $p =~ ^([0-9]{1,5})(/(tcp|udp))?$ ]] || fail 1 "extra_ports: '$p' is not PORT or PORT/tcp or PORT/udp"
    n=${BASH_REMATCH[1]}
    (( 10#$n >= 1 && 10#$n <= 65535 )) || fail 1 "extra_ports: $n is not a port between 1 and 65535"
    proto=${BASH_REMATCH[3]:-tcp}
    ports+=("$((10#$n))/$proto")
  done
fi
[[ $TIMEZONE =~ ^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$ ]] || fail 1 "timezone '$TIMEZONE' is not a zone name like Europe/Berlin"
# without tzdata yet, the zone is checked again right after tzdata is installed
if [ -d /usr/share/zoneinfo/Europe ] && [ ! -f "/usr/share/zoneinfo/$TIMEZONE" ]; then
  fail 1 "timezone '$TIMEZONE' is unknown (see timedatectl list-timezones)"
fi
if [ -n "$HOSTNAME_WANTED" ]; then
  [[ $HOSTNAME_WANTED =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || fail 1 "host_name '$HOSTNAME_WANTED' is not a valid host name"
fi

# ---- packages
apt_ready
if [ "$APT_UPGRADE" = true ]; then
  apt_get update -q || fail 2 "apt-get update failed"
  if apt-get -s -o Debug::NoLocking=1 upgrade | grep -q '^Inst '; then
    apt_get upgrade -y -q -o Dpkg::Options::=--force-confold || fail 2 "apt-get upgrade failed"
  else
    echo "packages are up to date"
  fi
fi
pkg_install curl git htop vim tzdata openssh-server openssh-client sudo
[ -f "/usr/share/zoneinfo/$TIMEZONE" ] || fail 1 "timezone '$TIMEZONE' is unknown (see timedatectl list-timezones)"

# ---- timezone and hostname
if [ "$(readlink /etc/localtime 2>/dev/null)" != "/usr/share/zoneinfo/$TIMEZONE" ]; then
  ln -sfn "/usr/share/zoneinfo/$TIMEZONE" /etc/localtime
  echo "timezone set to $TIMEZONE"
fi
put /etc/timezone 0644 "$TIMEZONE" || true
if [ -n "$HOSTNAME_WANTED" ] && [ "$(cat /etc/hostname 2>/dev/null)" != "$HOSTNAME_WANTED" ]; then
  put /etc/hostname 0644 "$HOSTNAME_WANTED" || true
  hostname "$HOSTNAME_WANTED" 2>/dev/null || true
  grep -qE "^127\.0\.1\.1[[:space:]]+$HOSTNAME_WANTED( |$)" /etc/hosts ||
    { sed -i '/^127\.0\.1\.1[[:space:]]/d' /etc/hosts; printf '127.0.1.1 %s\n' "$HOSTNAME_WANTED" >> /etc/hosts; }
  echo "host name set to $HOSTNAME_WANTED"
fi

# ---- the operator's key
if ! id "$SSH_USER" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$SSH_USER" || fail 2 "cannot create user $SSH_USER"
  echo "created user $SSH_USER"
fi
if [ "$SSH_USER" != root ]; then
  put "/etc/sudoers.d/90-provision-tui-$SSH_USER" 0440 "$SSH_USER ALL=(ALL) NOPASSWD:ALL" || true
  visudo -cf "/etc/sudoers.d/90-provision-tui-$SSH_USER" >/dev/null || fail 3 "sudoers entry for $SSH_USER is invalid"
fi
home=$(getent passwd "$SSH_USER" | cut -d: -f6)
{ [ -n "$home" ] && [ -d "$home" ]; } || fail 3 "user $SSH_USER has no home directory"
group=$(id -gn "$SSH_USER")
install -d -m 0700 -o "$SSH_USER" -g "$group" "$home/.ssh"
ak=$home/.ssh/authorized_keys
[ -f "$ak" ] || install -m 0600 -o "$SSH_USER" -g "$group" /dev/null "$ak"
# compare type+key only, so a different comment does not add a duplicate
keybody=$(printf '%s' "$SSH_PUBLIC_KEY" | awk '{print $1" "$2}')
if ! awk '{print $1" "$2}' "$ak" | grep -qxF "$keybody"; then
  printf '%s\n' "$SSH_PUBLIC_KEY" >> "$ak"
  echo "installed the operator key for $SSH_USER"
fi
chown "$SSH_USER:$group" "$ak"; chmod 0600 "$ak"

# ---- sshd: prove a key login works with the new configuration before reloading the real sshd
sshd_conf=$(cat <<CONF
# managed by provision-tui (base-setup)
PubkeyAuthentication yes
PermitRootLogin prohibit-password
CONF
)
if [ "$DISABLE_PASSWORD_AUTH" = true ]; then
  sshd_conf+=$'\nPasswordAuthentication no\nKbdInteractiveAuthentication no'
fi
dropin=/etc/ssh/sshd_config.d/00-provision-tui.conf
if [ ! -f "$dropin" ] || [ "$(cat "$dropin")" != "$sshd_conf" ]; then
  backup=
  [ -f "$dropin" ] && { backup=$(mktemp); cp -p "$dropin" "$backup"; }
  put "$dropin" 0644 "$sshd_conf" || true
  restore() {
    if [ -n "$backup" ]; then mv -f "$backup" "$dropin"; else rm -f "$dropin"; fi
  }
  if ! err=$(sshd -t 2>&1); then restore; fail 3 "sshd rejects the new configuration: $err"; fi
  # a throw-away sshd with the new configuration on a loopback port, and a throw-away key that is
  # appended to the same authorized_keys file for a moment: if that login works, the operator's does
  probe=$(mktemp -d)
  ssh-keygen -q -t ed25519 -N '' -C provision-tui-probe -f "$probe/key"
  printf '%s\n' "$(cat "$probe/key.pub")" >> "$ak"
  port=$(( 20000 + RANDOM % 20000 ))
  ok=false
  if /usr/sbin/sshd -f /etc/ssh/sshd_config -o "ListenAddress=127.0.0.1:$port" -o "PidFile=$probe/pid" -o MaxStartups=10 2>"$probe/err"; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      if ssh -i "$probe/key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
           -o LogLevel=ERROR -o ConnectTimeout=3 -o PasswordAuthentication=no "$SSH_USER@127.0.0.1" true </dev/null 2>>"$probe/err"; then
        ok=true; break
      fi
      sleep 0.3
    done
    kill "$(cat "$probe/pid" 2>/dev/null)" 2>/dev/null || true
  fi
  grep -vF "provision-tui-probe" "$ak" > "$probe/ak" || true
  cat "$probe/ak" > "$ak"
  if [ "$ok" != true ]; then
    cat "$probe/err" >&2 || true
    rm -rf "$probe"; restore
    fail 3 "a key login for $SSH_USER failed with the new sshd configuration; sshd was NOT reloaded"
  fi
  rm -rf "$probe"; [ -n "$backup" ] && rm -f "$backup"
  systemctl reload ssh || systemctl restart ssh || fail 3 "sshd reload failed"
  echo "sshd reconfigured (password logins: $([ "$DISABLE_PASSWORD_AUTH" = true ] && echo off || echo unchanged))"
fi

# ---- firewall
if [ "$ENABLE_FIREWALL" = true ]; then
  pkg_install ufw
  for p in "${ports[@]}"; do
    ufw status 2>/dev/null | grep -qE "^${p}[[:space:]]+ALLOW" && continue
    ufw allow "$p" >/dev/null || fail 3 "ufw allow $p failed"
    echo "ufw allows $p"
  done
  if ! ufw status | grep -q '^Status: active'; then
    ufw --force enable >/dev/null || fail 3 "ufw enable failed"
    echo "ufw enabled"
  fi
  ufw status | grep -q '^Status: active' || fail 3 "ufw is not active"
fi

# ---- fail2ban
if [ "$INSTALL_FAIL2BAN" = true ]; then
  pkg_install fail2ban python3-systemd
  # Debian 12 has no /var/log/auth.log by default: read sshd's journal instead
  if put /etc/fail2ban/jail.d/provision-tui.local 0644 "$(printf '[sshd]\nenabled = true\nbackend = systemd\n')"; then
    systemctl restart fail2ban || fail 3 "fail2ban did not start"
  fi
  systemctl is-enabled --quiet fail2ban || systemctl enable --quiet fail2ban
  systemctl is-active --quiet fail2ban || systemctl start fail2ban || fail 3 "fail2ban did not start"
fi

# ---- unattended-upgrades
if [ "$UNATTENDED_UPGRADES" = true ]; then
  pkg_install unattended-upgrades
  put /etc/apt/apt.conf.d/20auto-upgrades 0644 "$(printf 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";')" || true
fi

echo "base-setup done"
