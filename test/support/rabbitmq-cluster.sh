#!/usr/bin/env bash
# A private three-node RabbitMQ 3.10 cluster on loopback, for tests that kill,
# stop, pause and revive brokers. It never touches the machine's own node
# (rabbit@localhost on 5672) or its epmd on 4369.
#
# Usage (DIR is the cluster's directory, always the first argument):
#   rabbitmq-cluster.sh start    DIR BASE_PORT   create DIR, start 3 nodes, join 2 and 3 to 1
#   rabbitmq-cluster.sh kill     DIR I           SIGKILL node I's Erlang VM
#   rabbitmq-cluster.sh revive   DIR I           start node I again after a kill; it rejoins by itself
#   rabbitmq-cluster.sh stop_app DIR I           graceful stop of the RabbitMQ application (VM stays up)
#   rabbitmq-cluster.sh start_app DIR I          start the application again
#   rabbitmq-cluster.sh pause    DIR I           SIGSTOP node I's VM (a hung node)
#   rabbitmq-cluster.sh resume   DIR I           SIGCONT it
#   rabbitmq-cluster.sh ctl      DIR I ARGS...   rabbitmqctl against node I, e.g. `ctl DIR 1 list_queues -p / name type`
#   rabbitmq-cluster.sh members  DIR I           node I's view: "<node> running|down" for each member
#   rabbitmq-cluster.sh urls     DIR             amqp://guest:guest@127.0.0.1:<port> for each node, comma-separated
#   rabbitmq-cluster.sh stop     DIR             kill all three nodes and remove DIR
#   rabbitmq-cluster.sh watch    DIR PID         (used by start) run stop once process PID has exited
#
# Node I (1..3) is sobr<BASE_PORT>n<I>@localhost, with AMQP on 127.0.0.1:BASE_PORT+I-1
# and Erlang distribution on 127.0.0.1:BASE_PORT+100+I-1; the names carry the
# base port, so clusters on different ports never clash (in epmd or in /proc).
#
# Every node and CLI process runs under `env -i` with only these variables, so
# nothing of the caller's or the machine's RabbitMQ setup leaks in:
#   HOME                          DIR/home: a private .erlang.cookie (mode 400) that the
#                                 machine's node and other clusters do not share
#   ERL_EPMD_PORT, ERL_EPMD_ADDRESS
#                                 a private epmd (default 4399, loopback only); the first VM
#                                 starts it. `stop` leaves it running: other clusters may be
#                                 registered with it, and it holds no state once they are gone
#   RABBITMQ_CONF_ENV_FILE        an empty file: /etc/rabbitmq/rabbitmq-env.conf would set
#                                 NODENAME=rabbit@localhost, i.e. the machine's node
#   RABBITMQ_NODENAME, RABBITMQ_NODE_PORT, RABBITMQ_DIST_PORT
#                                 the node's identity and ports as above
#   RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE, RABBITMQ_PID_FILE
#                                 data, logs and pid file under DIR/nodeI (the pid file
#                                 holds the beam's own pid: 3.10 writes os:getpid())
#   RABBITMQ_CONFIG_FILE          DIR/nodeI/rabbitmq.conf (3.10 accepts the path with or
#                                 without `.conf`); the listener is bound to 127.0.0.1 and
#                                 the partition handling is pause_minority
#   RABBITMQ_CONFIG_FILES, RABBITMQ_ADVANCED_CONFIG_FILE
#                                 an empty conf.d and a missing advanced.config in DIR,
#                                 so files added to /etc/rabbitmq never reach these nodes
#   RABBITMQ_ENABLED_PLUGINS_FILE `[].`: no plugins (no management listener to clash)
#   RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS, RABBITMQ_CTL_ERL_ARGS
#                                 Erlang distribution of nodes and CLI on 127.0.0.1 only
#   RABBITMQ_CTL_DIST_PORT_MIN/MAX
#                                 0: the CLI's hidden node listens on an ephemeral port
#                                 instead of competing for 35672-35682 with every other
#                                 rabbitmqctl on the machine
#
# rabbitmqctl against a paused (SIGSTOPped) node hangs, so every CLI call here
# runs under `timeout` (CLUSTER_CTL_TIMEOUT_S, default 30 s); cluster_status
# hangs too while any member is paused, so membership is read with `members`.
# Each node's boot is bounded by CLUSTER_BOOT_TIMEOUT_S (default 60 s).
# With CLUSTER_OWNER_PID set, `start` leaves a watchdog that runs `stop DIR`
# once that process has exited (the vitest wrapper passes its own pid).
set -euo pipefail

readonly RABBITMQ_BIN=/usr/lib/rabbitmq/bin
readonly NODE_COUNT=3
readonly EPMD_PORT=${CLUSTER_EPMD_PORT:-4399}
readonly BOOT_TIMEOUT_S=${CLUSTER_BOOT_TIMEOUT_S:-60}
readonly CTL_TIMEOUT_S=${CLUSTER_CTL_TIMEOUT_S:-30}
# Written by `start`; `stop` deletes only directories that carry it.
readonly MARKER=.rabbitmq-cluster-base-port

die() {
  echo "rabbitmq-cluster: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- layout

base_port() {
  [ -f "$DIR/$MARKER" ] || die "$DIR is not a cluster directory (no $MARKER); run start first"
  cat "$DIR/$MARKER"
}
node_name() { echo "sobr$(base_port)n$1@localhost"; }
amqp_port() { echo $(($(base_port) + $1 - 1)); }
dist_port() { echo $(($(base_port) + 100 + $1 - 1)); }
node_dir() { echo "$DIR/node$1"; }

check_index() {
  [[ "$1" =~ ^[1-3]$ ]] || die "node index must be 1..$NODE_COUNT, got '$1'"
}

common_env() {
  COMMON_ENV=(
    PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    LANG=C.UTF-8
    LC_ALL=C.UTF-8
    HOME="$DIR/home"
    ERL_EPMD_PORT="$EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
  )
}

# The CLI gets no RABBITMQ_NODENAME (it is told -n), so a node's beam is the only
# process whose environment names the node: that is how node_beam_pid finds it.
cli_env() {
  common_env
  CLI_ENV=(
    "${COMMON_ENV[@]}"
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CTL_DIST_PORT_MIN=0
    RABBITMQ_CTL_DIST_PORT_MAX=0
  )
}

server_env() {
  local i=$1 dir
  dir=$(node_dir "$i")
  common_env
  SERVER_ENV=(
    "${COMMON_ENV[@]}"
    RABBITMQ_NODENAME="$(node_name "$i")"
    RABBITMQ_NODE_PORT="$(amqp_port "$i")"
    RABBITMQ_DIST_PORT="$(dist_port "$i")"
    RABBITMQ_MNESIA_BASE="$dir/mnesia"
    RABBITMQ_LOG_BASE="$dir/log"
    RABBITMQ_PID_FILE="$dir/beam.pid"
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    RABBITMQ_CONFIG_FILES="$DIR/conf.d"
    RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  )
}

# ---------------------------------------------------------------- processes

# True for a live process (a zombie is dead: this machine's init reaps late).
# Bash builtins only: the /proc scans below run this for every process.
process_alive() {
  local stat state
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  state=${stat##*) }
  [ "${state%% *}" != Z ]
}

process_is_beam_with_env() {
  local pid=$1 entry=$2 comm
  read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
  [ "$comm" = beam.smp ] && process_alive "$pid" || return 1
  grep -qxzF -- "$entry" "/proc/$pid/environ" 2>/dev/null
}

# Pids of live beam.smp processes whose environment holds `entry`.
beams_with_env() {
  local entry=$1 proc pid
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    process_is_beam_with_env "$pid" "$entry" && echo "$pid"
  done
  return 0
}

# Node I's Erlang VM (beam.smp itself, never a wrapper shell): the pid file if it
# is current, else a /proc scan. Fails when the node's VM is not running.
node_beam_pid() {
  local i=$1 entry pid
  entry="RABBITMQ_NODENAME=$(node_name "$i")"
  pid=$(cat "$(node_dir "$i")/beam.pid" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && process_is_beam_with_env "$pid" "$entry"; then
    echo "$pid"
    return 0
  fi
  pid=$(beams_with_env "$entry" | head -n 1)
  [ -n "$pid" ] && echo "$pid"
}

epmd_registered() {
  local short
  short=$(node_name "$1")
  grep -q "^name ${short%@*} at port " <<<"$(epmd -port "$EPMD_PORT" -names 2>/dev/null)"
}

# Polls `condition` (a command) every 0.2 s for at most `seconds`.
poll_until() {
  local seconds=$1 deadline
  shift
  deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

not_alive() { ! process_alive "$1"; }
not_registered() { ! epmd_registered "$1"; }

node_log_tail() {
  local i=$1 dir
  dir=$(node_dir "$i")
  echo "--- $dir/server.out" >&2
  tail -n 20 "$dir/server.out" >&2 2>/dev/null || true
  echo "--- $dir/log/$(node_name "$i").log" >&2
  tail -n 40 "$dir/log/$(node_name "$i").log" >&2 2>/dev/null || true
}

# ---------------------------------------------------------------- rabbitmqctl

# rabbitmqctl against node I, killed after `seconds`.
ctl_within() {
  local seconds=$1 i=$2 status=0
  shift 2
  cli_env
  timeout --kill-after=5 "$seconds" env -i "${CLI_ENV[@]}" \
    "$RABBITMQ_BIN/rabbitmqctl" -n "$(node_name "$i")" "$@" || status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "rabbitmq-cluster: rabbitmqctl -n $(node_name "$i") $* did not answer within $seconds s (node paused?)" >&2
  fi
  return "$status"
}

ctl() { ctl_within "$CTL_TIMEOUT_S" "$@"; }

# Node I's view of the cluster: each member and whether it runs RabbitMQ, one
# "<node> running|down" a line: the disk_nodes and running_nodes of cluster_status,
# read from node I's own state. cluster_status itself also calls every member
# and hangs (about a minute, until net_ticktime gives up) while one is paused.
readonly MEMBERS_EVAL='Running = rabbit_mnesia:cluster_nodes(running),
  lists:foreach(fun(N) -> io:format("~s ~s~n", [N, case lists:member(N, Running) of true -> running; false -> down end]) end,
                lists:sort(rabbit_mnesia:cluster_nodes(all))).'

members() {
  ctl "$1" -q eval "$MEMBERS_EVAL" | grep -E '^[^ ]+@[^ ]+ (running|down)$'
}

all_nodes_running() {
  local i
  for i in $(seq 1 "$NODE_COUNT"); do echo "$(node_name "$i") running"; done | sort
}

node_sees_all_running() {
  [ "$(members "$1" 2>/dev/null)" = "$(all_nodes_running)" ]
}

# Node I has rejoined: all three are its members, and it runs together with at
# least one other node (not alone in a partition of its own).
node_rejoined() {
  local i=$1 seen
  seen=$(members "$i" 2>/dev/null) || return 1
  [ "$(cut -d' ' -f1 <<<"$seen")" = "$(all_nodes_running | cut -d' ' -f1)" ] || return 1
  grep -qxF "$(node_name "$i") running" <<<"$seen" && [ "$(grep -c ' running$' <<<"$seen")" -ge 2 ]
}

# ---------------------------------------------------------------- node lifecycle

launch_node() {
  local i=$1
  node_beam_pid "$i" >/dev/null && die "node $i ($(node_name "$i")) is already running"
  server_env "$i"
  # -detached: the beam forks away from the wrapper shell, so the pid file and
  # node_beam_pid name the VM itself; output goes to a file, never to the caller's pipes.
  env -i "${SERVER_ENV[@]}" "$RABBITMQ_BIN/rabbitmq-server" -detached \
    >>"$(node_dir "$i")/server.out" 2>&1 </dev/null
}

# The VM registers with epmd early in its boot; await_startup before that fails
# at once, so wait for the registration, then let await_startup wait for the boot.
await_booted() {
  local i=$1 deadline remaining
  deadline=$((SECONDS + BOOT_TIMEOUT_S))
  until epmd_registered "$i"; do
    if ! node_beam_pid "$i" >/dev/null; then
      node_log_tail "$i"
      die "node $i ($(node_name "$i")) exited while booting"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      node_log_tail "$i"
      die "node $i did not register with epmd on $EPMD_PORT within ${BOOT_TIMEOUT_S} s"
    fi
    sleep 0.2
  done
  remaining=$((deadline - SECONDS > 1 ? deadline - SECONDS : 1))
  if ! ctl_within "$((remaining + 5))" "$i" -q await_startup --timeout "$remaining" >/dev/null; then
    node_log_tail "$i"
    die "node $i did not finish booting within ${BOOT_TIMEOUT_S} s"
  fi
}

write_node_config() {
  local i=$1 dir
  dir=$(node_dir "$i")
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$i")
cluster_partition_handling = pause_minority
log.console = false
log.file.level = info
EOF
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Leaves `watch DIR OWNER` running in a session of its own, off the caller's pipes.
start_watchdog() {
  local owner=$1
  [[ "$owner" =~ ^[0-9]+$ ]] || die "CLUSTER_OWNER_PID must be a pid, got '$owner'"
  setsid bash "$SCRIPT" watch "$DIR" "$owner" >/dev/null 2>&1 </dev/null &
}

# ---------------------------------------------------------------- subcommands

cmd_start() {
  local base=$1 i port started=$SECONDS waiters=()
  [[ "$base" =~ ^[0-9]+$ ]] && [ "$base" -ge 1024 ] && [ $((base + 102)) -le 65535 ] ||
    die "BASE_PORT must be a number from 1024 to 65433, got '$base'"
  if [ -f "$DIR/$MARKER" ]; then
    [ "$(cat "$DIR/$MARKER")" = "$base" ] || die "$DIR already holds the cluster on base port $(cat "$DIR/$MARKER")"
    if node_sees_all_running 1; then
      echo "rabbitmq-cluster: already running in $DIR"
      return 0
    fi
    die "$DIR holds a cluster that is not fully running; run '$0 stop $DIR' first"
  fi
  [ ! -e "$DIR" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR exists and is not a cluster directory"
  for port in $base $((base + 1)) $((base + 2)) $((base + 100)) $((base + 101)) $((base + 102)); do
    ! port_in_use "$port" || die "port $port on 127.0.0.1 is in use"
  done

  mkdir -p "$DIR/home" "$DIR/conf.d"
  echo "$base" >"$DIR/$MARKER"
  : >"$DIR/rabbitmq-env.conf"
  echo '[].' >"$DIR/enabled_plugins"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
  chmod 400 "$DIR/home/.erlang.cookie"
  for i in $(seq 1 "$NODE_COUNT"); do write_node_config "$i"; done
  [ -z "${CLUSTER_OWNER_PID:-}" ] || start_watchdog "$CLUSTER_OWNER_PID"

  # The three VMs boot concurrently (boot is most of the time); 2 and 3 then
  # join 1 one after the other, as concurrent joins would both change 1's schema.
  for i in $(seq 1 "$NODE_COUNT"); do launch_node "$i"; done
  for i in $(seq 1 "$NODE_COUNT"); do
    await_booted "$i" &
    waiters+=($!)
  done
  for i in "${waiters[@]}"; do wait "$i" || die "the cluster did not boot (see above); run '$0 stop $DIR'"; done
  for i in $(seq 2 "$NODE_COUNT"); do
    ctl "$i" -q stop_app >/dev/null
    ctl "$i" -q join_cluster "$(node_name 1)" >/dev/null
    ctl "$i" -q start_app >/dev/null
  done
  poll_until "$BOOT_TIMEOUT_S" node_sees_all_running 1 ||
    die "$(node_name 1) does not see all $NODE_COUNT nodes running"
  echo "rabbitmq-cluster: $NODE_COUNT nodes running in $DIR after $((SECONDS - started)) s: $(cmd_urls)"
}

cmd_kill() {
  local i=$1 pid
  pid=$(node_beam_pid "$i") || die "node $i ($(node_name "$i")) is not running"
  kill -KILL "$pid"
  poll_until 10 not_alive "$pid" || die "beam $pid of node $i survived SIGKILL"
  # epmd drops the name when the VM's connection to it closes, i.e. at once.
  poll_until 10 not_registered "$i" || die "node $i is still registered with epmd on $EPMD_PORT"
  echo "rabbitmq-cluster: killed node $i (beam pid $pid)"
}

cmd_revive() {
  local i=$1 started=$SECONDS
  launch_node "$i"
  await_booted "$i"
  poll_until "$BOOT_TIMEOUT_S" node_rejoined "$i" || die "node $i booted but did not rejoin the cluster"
  echo "rabbitmq-cluster: node $i running and clustered after $((SECONDS - started)) s"
}

cmd_signal() {
  local signal=$1 i=$2 pid
  pid=$(node_beam_pid "$i") || die "node $i ($(node_name "$i")) is not running"
  kill "-$signal" "$pid"
}

cmd_members() {
  members "$1"
}

# Runs `stop DIR` once process `owner` is gone (or a zombie), so a test process
# that crashes or is SIGKILLed (vitest kills a worker 500 ms after SIGTERM) leaves
# no nodes behind. Ends by itself once DIR is gone.
cmd_watch() {
  local owner=$1
  while [ -d "$DIR" ] && process_alive "$owner"; do sleep 1; done
  if [ -d "$DIR" ]; then cmd_stop; fi
}

cmd_urls() {
  local i urls=()
  for i in $(seq 1 "$NODE_COUNT"); do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$i")"); done
  (IFS=,; echo "${urls[*]}")
}

# No graceful shutdown: the data is deleted right after, and `rabbitmqctl stop`
# takes seconds per node (and hangs on a paused one). Every beam whose HOME is
# this cluster's (nodes and any CLI still running) is continued, then killed.
cmd_stop() {
  local pids pid
  if [ ! -e "$DIR" ] || { [ -d "$DIR" ] && [ -z "$(ls -A "$DIR")" ] && rmdir -- "$DIR"; }; then
    echo "rabbitmq-cluster: nothing to stop in $DIR"
    return 0
  fi
  [ -f "$DIR/$MARKER" ] || die "$DIR is not a cluster directory (no $MARKER); refusing to delete it"
  pids=$(beams_with_env "HOME=$DIR/home")
  for pid in $pids; do kill -CONT "$pid" 2>/dev/null || true; done
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in $pids; do poll_until 10 not_alive "$pid" || die "beam $pid survived SIGKILL"; done
  rm -rf -- "$DIR"
  echo "rabbitmq-cluster: stopped $(wc -w <<<"$pids") beam(s), removed $DIR"
}

# ---------------------------------------------------------------- main

[ $# -ge 2 ] || usage
SCRIPT=$(realpath -- "$0")
readonly SCRIPT
command=$1
DIR=$(realpath -m -- "$2")
readonly DIR
shift 2

case "$command" in
  start) [ $# -eq 1 ] || usage; cmd_start "$1" ;;
  stop) [ $# -eq 0 ] || usage; cmd_stop ;;
  urls) [ $# -eq 0 ] || usage; cmd_urls ;;
  watch) [ $# -eq 1 ] || usage; cmd_watch "$1" ;;
  kill | revive | stop_app | start_app | pause | resume | members)
    [ $# -eq 1 ] || usage
    check_index "$1"
    case "$command" in
      kill) cmd_kill "$1" ;;
      revive) cmd_revive "$1" ;;
      stop_app | start_app) ctl "$1" -q "$command" ;;
      pause) cmd_signal STOP "$1" ;;
      resume) cmd_signal CONT "$1" ;;
      members) cmd_members "$1" ;;
    esac
    ;;
  ctl)
    [ $# -ge 2 ] || usage
    check_index "$1"
    ctl "$@"
    ;;
  *) usage ;;
esac
