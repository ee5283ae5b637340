#!/usr/bin/env bash
# base-setup: undo what can be undone safely. The operator's key, the login user, the essentials,
# the timezone, the host name and the sudo rule stay: removing them could lock the operator out.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ptui:include apt.sh
installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^[ir]'; }

dropin=/etc/ssh/sshd_config.d/00-provision-tui.conf
if [ -f "$dropin" ]; then
  rm -f "$dropin"
  sshd -t || fail 3 "sshd configuration is invalid after removing $dropin"
  systemctl reload ssh || systemctl restart ssh || fail 3 "sshd reload failed"
  echo "sshd back to the distribution defaults"
fi
if installed ufw; then
  ufw --force disable >/dev/null 2>&1 || true
  apt_get purge -y -q ufw || fail 2 "apt-get purge ufw failed"
fi
if installed fail2ban; then
  apt_get purge -y -q fail2ban || fail 2 "apt-get purge fail2ban failed"
fi
rm -f /etc/fail2ban/jail.d/provision-tui.local
if installed unattended-upgrades; then
  apt_get purge -y -q unattended-upgrades || fail 2 "apt-get purge unattended-upgrades failed"
fi
rm -f /etc/apt/apt.conf.d/20auto-upgrades
apt_get autoremove -y -q --purge >/dev/null || true
echo "base-setup removed (key, user, essentials, timezone and host name kept)"
