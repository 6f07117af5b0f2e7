#!/usr/bin/env bash
# Step 1 of `npm run setup:test`: the command-line tools the monitoring,
# deployment and browser tests run. promtool (Debian package `prometheus`),
# docker-compose (Debian's v1, which validates compose.yaml without a Docker
# engine), nginx with its stream module (test/e2e/multi-node.test.ts,
# test/support/tcp-balancer.ts) and chromium (test/e2e/browser.test.ts).
# Says what it found; installs from apt only what is missing, which needs root
# and a Debian-based system, and says so instead of failing inside apt-get.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
# Debian's chromium, driven by playwright-core; never a downloaded browser.
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  echo "ensure-tools: promtool, docker-compose, nginx (stream module), chromium present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "ensure-tools: missing Debian packages ${missing[*]}; install them (apt-get install --no-install-recommends ${missing[*]}) or run npm run setup:test as root" >&2
  exit 1
fi
echo "ensure-tools: installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: no node-exporter or Docker engine, nothing starts.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v promtool >/dev/null
command -v docker-compose >/dev/null
[ -x /usr/sbin/nginx ]
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]
[ -x /usr/bin/chromium ]
echo "ensure-tools: installed ${missing[*]}"
