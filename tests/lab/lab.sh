#!/usr/bin/env bash
# provision-tui test lab: real Debian 12 servers (systemd as PID 1) on this machine.
#
# Each server N is
#   - a network namespace ptlabN with IP 10.78.0.(10+N) on the bridge br-ptlab (NAT to the mirror;
#     PTLAB_ID=1..9 gives a second lab on 10.78.ID.0/24 that can run at the same time),
#   - an overlayfs copy of one debootstrapped golden image (reset to pristine = new empty upper dir),
#   - booted with `systemd-nspawn -b`, root login by the lab's generated SSH key.
#
# Usage (root):
#   tests/lab/lab.sh check          # exit 0 if the lab can run here, else print why and exit 77
#   tests/lab/lab.sh setup          # host packages, key, bridge, NAT, sysctls
#   tests/lab/lab.sh golden         # build the golden image once (cached in $PTLAB); FORCE=1 rebuilds
#   tests/lab/lab.sh up N           # create and boot server N, wait for SSH
#   tests/lab/lab.sh reset N        # power off, drop every change, boot pristine again
#   tests/lab/lab.sh ssh N [CMD]    # ssh root@server N with the lab key
#   tests/lab/lab.sh ip N | key     # print server N's IP / the private key path
#   tests/lab/lab.sh down N         # power off and delete server N
#   tests/lab/lab.sh teardown       # delete every server, the bridge, NAT and restore sysctls
#
# PTLAB (default /var/tmp/provision-tui-lab) holds the image, overlays and keys; it is outside the
# work tree on purpose so that `git clean` and `cargo` never see it.
set -euo pipefail

PTLAB=${PTLAB:-/var/tmp/provision-tui-lab}
# PTLAB_ID=1..9 runs a second, independent lab beside the default one (own bridge, subnet
# 10.78.ID.0/24, namespaces, servers); the golden image and the key are shared.
LID=${PTLAB_ID:-0}
[[ $LID =~ ^[0-9]$ ]] || { echo "lab: PTLAB_ID must be 0-9" >&2; exit 2; }
if [ "$LID" = 0 ]; then SFX=; NSP=ptlab; VP=ptv; else SFX=$LID; NSP=ptlab${LID}x; VP=ptv${LID}x; fi
BR=br-ptlab$SFX
NET=10.78.$LID
SRV=$PTLAB/srv$SFX
OVL=$PTLAB/ovl$SFX
CG=ptlab$SFX
KEY=$PTLAB/keys/id_ed25519
GOLDEN=$PTLAB/golden.tar.zst
GOLDEN_RO=$PTLAB/golden-ro
# bump when the golden recipe changes, so a stale cache is rebuilt
GOLDEN_VERSION=1
SSHO=(-i "$KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
      -o BatchMode=yes -o ConnectTimeout=3)
GOLDEN_PKGS="openssh-server systemd systemd-sysv libpam-systemd dbus iproute2 iputils-ping procps
  ca-certificates curl sudo less nano python3 cron logrotate gnupg apt-transport-https lsb-release
  netbase"
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

ip_of() { echo "$NET.$((10 + $1))"; }
log() { echo "lab: $*" >&2; }
die() { echo "lab: $*" >&2; exit 1; }

check_num() {
  if [[ ${1:-} =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 200 )); then return 0; fi
  die "server number must be 1-200, got '${1:-}'"
}

# Why the lab cannot run here, or nothing. Used by the test drivers to skip with a reason.
why_not() {
  [ "$(uname -s)" = Linux ] || { echo "not Linux"; return; }
  [ "$(id -u)" = 0 ] || { echo "not root (the lab needs network namespaces, mounts and systemd-nspawn)"; return; }
  [ "${PROVISION_TUI_LAB:-1}" != 0 ] || { echo "PROVISION_TUI_LAB=0"; return; }
  command -v ip >/dev/null || { echo "iproute2 (ip) is not installed"; return; }
  if ! ip netns add "ptlab-probe$$" 2>/dev/null; then echo "cannot create network namespaces"; return; fi
  ip netns del "ptlab-probe$$" 2>/dev/null || true
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || { echo "no overlayfs in this kernel"; return; }
  if [ "${1:-}" != strict ]; then return; fi
  # missing tools are fine where `setup` can apt-get install them
  command -v apt-get >/dev/null && return
  command -v systemd-nspawn >/dev/null || { echo "systemd-nspawn missing (install systemd-container)"; return; }
  command -v debootstrap >/dev/null || [ -f "$GOLDEN" ] || { echo "debootstrap missing and no cached golden image"; return; }
}

check() {
  local r; r=$(why_not strict)
  if [ -n "$r" ]; then echo "lab unavailable: $r"; exit 77; fi
  echo "lab available"
}

setup() {
  local r; r=$(why_not); [ -z "$r" ] || die "cannot set up the lab: $r"
  local need=()
  command -v systemd-nspawn >/dev/null || need+=(systemd-container)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v iptables >/dev/null || need+=(iptables)
  command -v zstd >/dev/null || need+=(zstd)
  command -v ssh >/dev/null || need+=(openssh-client)
  # the suite's checks from outside the servers
  command -v curl >/dev/null || need+=(curl)
  command -v python3 >/dev/null || need+=(python3)
  command -v git >/dev/null || need+=(git)
  command -v redis-cli >/dev/null || need+=(redis-tools)
  command -v psql >/dev/null || need+=(postgresql-client)
  command -v mariadb >/dev/null || need+=(mariadb-client)
  if ((${#need[@]})); then
    log "installing host packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
  mkdir -p "$PTLAB/keys" "$SRV" "$OVL"
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -f "$KEY" -C provision-tui-lab
  if ! ip link show "$BR" >/dev/null 2>&1; then
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
  fi
  [ -f "$PTLAB/.ip_forward.orig" ] || sysctl -n net.ipv4.ip_forward > "$PTLAB/.ip_forward.orig"
  sysctl -qw net.ipv4.ip_forward=1
  # each guest systemd (and each user@0 of an SSH login) uses inotify instances of host uid 0
  [ -f "$PTLAB/.inotify.orig" ] || sysctl -n fs.inotify.max_user_instances > "$PTLAB/.inotify.orig"
  sysctl -qw fs.inotify.max_user_instances=8192
  iptables -t nat -C POSTROUTING -s "$NET.0/24" ! -o "$BR" -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A POSTROUTING -s "$NET.0/24" ! -o "$BR" -j MASQUERADE
  # hosts with a DROP forward policy: let lab traffic through
  iptables -C FORWARD -i "$BR" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$BR" -j ACCEPT
  iptables -C FORWARD -o "$BR" -j ACCEPT 2>/dev/null || iptables -I FORWARD -o "$BR" -j ACCEPT
}

# chroot with /dev /proc /sys /run in a private mount namespace (the mounts vanish on exit)
chroot_run() {
  local R=$1; shift
  unshare --mount --propagation private --fork /bin/sh -c '
    R=$1; shift; mount --rbind /dev "$R/dev"; mount -t proc proc "$R/proc"
    mount -t sysfs sysfs "$R/sys"; mount -t tmpfs tmpfs "$R/run"; mkdir -p "$R/run/lock"
    exec chroot "$R" "$@"' sh "$R" "$@"
}

golden() {
  if [ -f "$GOLDEN" ] && [ "$(cat "$PTLAB/golden.version" 2>/dev/null)" = "$GOLDEN_VERSION" ] && [ -z "${FORCE:-}" ]; then
    log "golden image cached: $GOLDEN"; unpack_golden; return
  fi
  [ -f "$KEY" ] || setup
  local R=$PTLAB/build/rootfs t0=$SECONDS
  rm -rf "$PTLAB/build"; mkdir -p "$PTLAB/build"
  log "debootstrap bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$R" "$MIRROR" > "$PTLAB/build/debootstrap.log" 2>&1 ||
    { tail -20 "$PTLAB/build/debootstrap.log"; die "debootstrap failed"; }
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  # the same apt sources as this machine (security updates included), like an up-to-date cloud image
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$R/etc/apt/sources.list.d/debian.sources"
    rm -f "$R/etc/apt/sources.list"
  fi
  # no daemons may start on the build host
  printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
  chroot_run "$R" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get -y -q upgrade &&
      apt-get install -y -q --no-install-recommends ${GOLDEN_PKGS//$'\n'/ }" > "$PTLAB/build/apt.log" 2>&1 ||
    { tail -20 "$PTLAB/build/apt.log"; die "package install in the golden image failed"; }
  rm -f "$R/usr/sbin/policy-rc.d"
  # root logs in by key, like a cloud image
  install -d -m700 "$R/root/.ssh"; install -m600 "$KEY.pub" "$R/root/.ssh/authorized_keys"
  # per-server identity on first boot: host keys and machine-id
  rm -f "$R"/etc/ssh/ssh_host_*; : > "$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id"
  cat > "$R/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/ssh-hostkeys.service "$R/etc/systemd/system/multi-user.target.wants/"
  mkdir -p "$R/etc/systemd/system/ssh.service.d"
  printf '[Unit]\nWants=ssh-hostkeys.service\nAfter=ssh-hostkeys.service\n' > "$R/etc/systemd/system/ssh.service.d/hostkeys.conf"
  chroot_run "$R" apt-get clean; rm -rf "$R"/var/lib/apt/lists/*
  tar --numeric-owner --xattrs --acls -C "$R" -I 'zstd -T0 -3' -cf "$GOLDEN.tmp" .
  mv "$GOLDEN.tmp" "$GOLDEN"; echo "$GOLDEN_VERSION" > "$PTLAB/golden.version"
  rm -rf "$PTLAB/build" "$GOLDEN_RO"
  unpack_golden
  log "golden image built in $((SECONDS - t0)) s ($(du -h "$GOLDEN" | cut -f1))"
}

unpack_golden() {   # the read-only lower layer shared by every server (flock: parallel-safe)
  (
    flock 9
    [ -f "$GOLDEN_RO/.complete" ] && exit 0
    rm -rf "$GOLDEN_RO"; mkdir -p "$GOLDEN_RO"
    tar --numeric-owner --xattrs --acls -I zstd -xpf "$GOLDEN" -C "$GOLDEN_RO"
    touch "$GOLDEN_RO/.complete"
  ) 9>"$PTLAB/.golden.lock"
}

mk_netns() {
  local i=$1 ns=$NSP$1
  ip netns add "$ns"
  ip link add "$VP$i" type veth peer name eth0 netns "$ns"
  ip link set "$VP$i" master "$BR" up
  ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "$NET.1"
}

mk_rootfs() {       # pristine root fs in < 0.1 s: overlay(golden-ro + empty upper)
  local i=$1 R=$SRV/h$1
  [ -f "$GOLDEN_RO/.complete" ] || unpack_golden
  mkdir -p "$OVL/h$i/upper" "$OVL/h$i/work" "$R"
  mount -t overlay overlay -o "lowerdir=$GOLDEN_RO,upperdir=$OVL/h$i/upper,workdir=$OVL/h$i/work" "$R"
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  # the servers reach the internet the way this machine does: when its traffic goes through a
  # TLS-intercepting egress proxy, they must trust the same CAs (the Debian mirror is plain HTTP,
  # but the npm registry is HTTPS)
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cat "$GOLDEN_RO/etc/ssl/certs/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt > "$R/etc/ssl/certs/ca-certificates.crt"
  fi
  echo "h$i" > "$R/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 h%s\n' "$i" > "$R/etc/hosts"
}

# --register=no --keep-unit: the host's PID 1 is not systemd (no machined)
# own cgroup /ptlab/hN: otherwise every guest systemd shares one cgroup and units fail at random
# UNIFIED_HIERARCHY=1: the guest gets cgroup v2 (docker/runc can create cgroups)
# API_VFS_WRITABLE=network: /proc/sys/net is writable (ufw, dockerd)
# CAP_NET_ADMIN: iptables/ufw inside; @keyring + bpf: runc (docker run)
# the loop: nspawn exits 133 when the guest reboots -> boot it again
boot() {
  local i=$1 R=$SRV/h$1
  setsid bash -c '
    for h in systemd unified; do
      [ -d /sys/fs/cgroup/$h ] || continue
      mkdir -p /sys/fs/cgroup/$h/'"$CG"'/h'"$i"'; echo $$ > /sys/fs/cgroup/$h/'"$CG"'/h'"$i"'/cgroup.procs
    done
    while :; do
      SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_NSPAWN_API_VFS_WRITABLE=network \
      systemd-nspawn -D '"$R"' -M pt'"$SFX"h"$i"' -b --register=no --keep-unit --console=passive \
        --network-namespace-path=/run/netns/'"$NSP$i"' --capability=CAP_NET_ADMIN,CAP_BPF,CAP_PERFMON \
        --system-call-filter=@keyring --system-call-filter=bpf &
      echo $! > '"$SRV"'/h'"$i"'.nspawn.pid; wait $!; rc=$?
      [ $rc -eq 133 ] || break
    done' > "$SRV/h$i.log" 2>&1 < /dev/null &
  echo $! > "$SRV/h$i.pid"
}

wait_ssh() {
  local i=$1 start=$SECONDS
  for _ in $(seq 1 300); do
    if ssh "${SSHO[@]}" -o ConnectTimeout=1 "root@$(ip_of "$i")" true 2>/dev/null; then
      log "server $i ($(ip_of "$i")) answers SSH after $((SECONDS - start)) s"; return 0
    fi
    sleep 0.2
  done
  tail -20 "$SRV/h$i.log" >&2 || true
  die "server $i: no SSH after 60 s"
}

up() {
  check_num "${1:-}"; local i=$1
  if [ ! -f "$KEY" ] || ! ip link show "$BR" >/dev/null 2>&1; then setup; fi
  [ -f "$GOLDEN" ] || golden
  [ ! -e "$SRV/h$i.up" ] || down "$i"
  touch "$SRV/h$i.up"
  mk_netns "$i"; mk_rootfs "$i"; boot "$i"; wait_ssh "$i"
}

poweroff() {
  local i=$1 p w
  p=$(cat "$SRV/h$i.nspawn.pid" 2>/dev/null || true)
  w=$(cat "$SRV/h$i.pid" 2>/dev/null || true)
  [ -n "$w" ] || return 0
  # TERM to nspawn = clean guest poweroff; KILL if it hangs
  if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; fi
  for _ in $(seq 1 100); do kill -0 "$w" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$w" 2>/dev/null; then
    if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi
    kill -KILL "$w" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$SRV/h$i.pid" "$SRV/h$i.nspawn.pid"
}

rm_cgroups() {  # bottom-up: only empty cgroup directories can be removed
  local h
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h/$CG/h$1" ] || continue
    # processes left behind (a KILLed guest): kill them first
    # shellcheck disable=SC2038  # the pipe carries pids, not file names
    find "/sys/fs/cgroup/$h/$CG/h$1" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    find "/sys/fs/cgroup/$h/$CG/h$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

umount_root() {
  local R=$SRV/h$1
  mountpoint -q "$R" 2>/dev/null || return 0
  umount "$R" 2>/dev/null || umount -l "$R"
}

reset() {
  check_num "${1:-}"; local i=$1 t0=$SECONDS keep=$PTLAB/keep-h$1
  poweroff "$i"; rm_cgroups "$i"; umount_root "$i"
  # the server keeps its SSH host keys (a reinstalled VPS keeps its identity), so a client's
  # recorded host key stays valid across resets
  rm -rf "$keep"; mkdir -p "$keep"
  cp -a "$OVL/h$i/upper/etc/ssh/"ssh_host_* "$keep/" 2>/dev/null || true
  rm -rf "$OVL/h$i"
  mk_rootfs "$i"
  if compgen -G "$keep/ssh_host_*" >/dev/null; then cp -a "$keep"/ssh_host_* "$SRV/h$i/etc/ssh/"; fi
  rm -rf "$keep"
  boot "$i"; wait_ssh "$i"
  log "server $i reset in $((SECONDS - t0)) s"
}

down() {
  check_num "${1:-}"; local i=$1
  poweroff "$i"; rm_cgroups "$i"; umount_root "$i"
  rm -rf "$OVL/h$i" "$SRV/h$i" "$SRV/h$i.log" "$SRV/h$i.up"
  ip link del "$VP$i" 2>/dev/null || true
  ip netns del "$NSP$i" 2>/dev/null || true
}

teardown() {
  local f n
  for f in "$SRV"/h*.up; do
    [ -e "$f" ] || continue
    n=${f##*/h}; down "${n%.up}" &
  done
  wait
  # namespaces left by a crashed run
  for n in $(ip netns list 2>/dev/null | awk -v p="^${NSP}[0-9]+$" '$1 ~ p {print $1}'); do
    ip netns del "$n" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  iptables -t nat -D POSTROUTING -s "$NET.0/24" ! -o "$BR" -j MASQUERADE 2>/dev/null || true
  iptables -D FORWARD -i "$BR" -j ACCEPT 2>/dev/null || true
  iptables -D FORWARD -o "$BR" -j ACCEPT 2>/dev/null || true
  # sysctls go back only when no other lab instance is still up
  if ip -o link show type bridge 2>/dev/null | grep -q ' br-ptlab'; then
    rmdir "/sys/fs/cgroup/systemd/$CG" "/sys/fs/cgroup/unified/$CG" 2>/dev/null || true
    return 0
  fi
  if [ -f "$PTLAB/.ip_forward.orig" ]; then sysctl -qw "net.ipv4.ip_forward=$(cat "$PTLAB/.ip_forward.orig")"; rm -f "$PTLAB/.ip_forward.orig"; fi
  if [ -f "$PTLAB/.inotify.orig" ]; then sysctl -qw "fs.inotify.max_user_instances=$(cat "$PTLAB/.inotify.orig")"; rm -f "$PTLAB/.inotify.orig"; fi
  rmdir "/sys/fs/cgroup/systemd/$CG" "/sys/fs/cgroup/unified/$CG" 2>/dev/null || true
}

cmd=${1:-}; shift || true
case $cmd in
  check) check ;;
  setup|golden|unpack_golden|teardown) "$cmd" ;;
  up|down|reset|wait_ssh) "$cmd" "$@" ;;
  ip) check_num "${1:-}"; ip_of "$1" ;;
  key) echo "$KEY" ;;
  bridge-ip) echo "$NET.1" ;;
  ssh) check_num "${1:-}"; i=$1; shift; exec ssh "${SSHO[@]}" "root@$(ip_of "$i")" "$@" ;;
  *) sed -n 2,22p "$0"; exit 2 ;;
esac
