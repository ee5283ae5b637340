#!/usr/bin/env bash
# node-exporter: Debian's prometheus-node-exporter listening on LISTEN_ADDRESS:PORT.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# ptui:include apt.sh
# ptui:include net.sh
# the collectors package pulls in smartmontools, moreutils and more: metrics of the host only
apt_install_opts=(--no-install-recommends)

# ---- validate every input before touching the server
LISTEN_ADDRESS=${LISTEN_ADDRESS:-0.0.0.0}
PORT=${PORT:-9100}
valid_ipv4 "$LISTEN_ADDRESS" || fail 1 "listen_address: '$LISTEN_ADDRESS' is not an IPv4 address"
if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then fail 1 "port: '$PORT' is not a port (1-65535)"; fi
if [ "$LISTEN_ADDRESS" != 0.0.0.0 ]; then
  mine=$(ip -4 -o addr show | awk '{ sub("/.*", "", $4); print $4 }')
  grep -qxF "$LISTEN_ADDRESS" <<< "$mine" ||
    fail 1 "listen_address: $LISTEN_ADDRESS is not an address of this server (it has $(echo "$mine" | tr '\n' ' ')); use one of those or 0.0.0.0"
fi
owner=$(port_owner "$PORT")
[ -z "$owner" ] || [ "$owner" = prometheus-node ] || fail 1 "port: $PORT is already used by $owner on this server; choose another port"

# ---- install and configure
pkg_install prometheus-node-exporter curl
url_host=$LISTEN_ADDRESS; [ "$url_host" = 0.0.0.0 ] && url_host=127.0.0.1
put /etc/provision-tui/node-exporter.url 0644 "http://$url_host:$PORT/metrics" || true
if put /etc/default/prometheus-node-exporter 0644 "# written by provision-tui (node-exporter)
ARGS=\"--web.listen-address=$LISTEN_ADDRESS:$PORT\""; then
  echo "listening on $LISTEN_ADDRESS:$PORT"
  systemctl restart prometheus-node-exporter || fail 3 "prometheus-node-exporter did not start; see journalctl -u prometheus-node-exporter"
fi
systemctl is-enabled --quiet prometheus-node-exporter || systemctl enable --now prometheus-node-exporter

# ---- verify
for _ in $(seq 1 30); do
  if curl -fsS -m 5 "http://$url_host:$PORT/metrics" 2>/dev/null | grep -q '^node_exporter_build_info'; then
    echo "node-exporter serves metrics on http://$LISTEN_ADDRESS:$PORT/metrics"
    exit 0
  fi
  sleep 1
done
fail 3 "no metrics on http://$url_host:$PORT/metrics; see journalctl -u prometheus-node-exporter"
