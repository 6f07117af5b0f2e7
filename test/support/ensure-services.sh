#!/usr/bin/env bash
# Step 2 of `npm run setup:test`: the RabbitMQ (with its management and
# Prometheus plugins) and PostgreSQL the tests talk to are running; tests never
# mock either one. Says what it found; a running service is left alone, a
# stopped one installed on this machine is started.
set -euo pipefail

if rabbitmqctl -q status >/dev/null 2>&1; then
  echo "ensure-services: RabbitMQ running"
else
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
echo "ensure-services: rabbitmq_management (15672) and rabbitmq_prometheus (15692) listening"

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
  pg_isready -q -h 127.0.0.1 -p 5432
  echo "ensure-services: PostgreSQL $pg_version accepting connections on 127.0.0.1:5432"
else
  echo "ensure-services: no Debian PostgreSQL cluster here; the tests expect one at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)"
fi
