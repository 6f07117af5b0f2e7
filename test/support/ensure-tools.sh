#!/usr/bin/env bash
# Installs the command-line tools the monitoring and deployment tests run:
# promtool (Debian package `prometheus`) and docker-compose (Debian's v1, which
# validates compose.yaml without a Docker engine), and chromium for the
# browser tests (test/e2e/browser.test.ts). Idempotent and quick when
# all are present; needs root (CI runs as root) only when something is missing.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# nginx (Debian package) and the `prometheus` server run as child processes by test/e2e/multi-node.test.ts;
# nginx's stream module is the TCP load balancer in front of a RabbitMQ cluster (test/support/tcp-balancer.ts).
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
# Debian's chromium for the browser tests (driven by playwright-core; never a downloaded browser).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: no node-exporter or Docker engine, nothing starts.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v promtool >/dev/null
command -v docker-compose >/dev/null
[ -x /usr/sbin/nginx ]
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]
[ -x /usr/bin/chromium ]
