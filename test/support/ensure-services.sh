#!/usr/bin/env bash
# Makes sure the RabbitMQ and PostgreSQL the tests talk to are running.
# Idempotent: a running service is left alone. Tests never mock either one.
set -euo pipefail

bash "$(dirname "$0")/ensure-tools.sh"

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "ensure-services: starting RabbitMQ"
  rabbitmq-server -detached
fi
rabbitmqctl -q await_startup --timeout 120 >/dev/null

# Management HTTP API (15672) and Prometheus endpoint (15692): the monitoring
# and definitions tests use both, as does rabbitmq/enabled_plugins in compose.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 15672 || ! port_open 15692; then
  echo "ensure-services: enabling rabbitmq_management and rabbitmq_prometheus"
  rabbitmq-plugins -q enable rabbitmq_management rabbitmq_prometheus >/dev/null
  for _ in $(seq 1 60); do
    port_open 15672 && port_open 15692 && break
    sleep 1
  done
  port_open 15672 && port_open 15692
fi

if command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "ensure-services: starting PostgreSQL $pg_version"
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
fi
