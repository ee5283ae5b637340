#!/usr/bin/env bash
# n8n: remove the service, the install in /opt/n8n and the nginx site. Workflow data in
# /var/lib/n8n (workflows, credentials) is kept on purpose: it cannot be recreated.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
systemctl disable --now n8n 2>/dev/null || true
rm -f /etc/systemd/system/n8n.service
systemctl daemon-reload
rm -rf /opt/n8n /etc/n8n
if [ -e /etc/nginx/sites-available/n8n ]; then
  rm -f /etc/nginx/sites-available/n8n /etc/nginx/sites-enabled/n8n
  systemctl reload nginx 2>/dev/null || true
fi
echo "n8n removed (workflow data kept in /var/lib/n8n)"
