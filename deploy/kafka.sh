#!/usr/bin/env bash
# Canh Gac: a local Kafka-protocol broker (Tansu 0.6.0) for development and CI, started by hand.
#
#   deploy/kafka.sh install   # cargo install tansu 0.6.0 into the tools cache (once, ~10 min cold)
#   deploy/kafka.sh start     # loopback broker with in-memory storage, waits for the port
#   deploy/kafka.sh stop      # stops the broker started by `start` (pid file)
#   deploy/kafka.sh status    # running or not, address
#
# Every command is idempotent. Settings (environment):
#   SOC_TOOLS_DIR    cache of built tools            default $HOME/.cache/soc-tools (binary: tansu/bin/tansu)
#   SOC_KAFKA_DIR    pid file, log, working dir      default $HOME/.local/share/soc/kafka
#   SOC_KAFKA_PORT   listener port on 127.0.0.1      default 9092
#   SOC_KAFKA_WAIT   seconds to wait for the port    default 30
#   SOC_KAFKA_LOG    RUST_LOG of the broker          default warn
#
# Tansu does not auto-create topics: the bus creates them (`ensure_topics`). Storage is in
# memory (`memory://tansu/`): a restart loses every topic, record and committed offset. The
# broker reads LISTENER_URL, STORAGE_ENGINE, CLUSTER_ID, ... from its environment and from a
# `.env` in its working directory, so it runs with a scrubbed environment in an empty directory.
# It is a test and development broker, not a production setup.
set -euo pipefail

TANSU_VERSION="0.6.0"
TOOLS_DIR="${SOC_TOOLS_DIR:-$HOME/.cache/soc-tools}"
ROOT="$TOOLS_DIR/tansu"
BIN="$ROOT/bin/tansu"
DIR="${SOC_KAFKA_DIR:-$HOME/.local/share/soc/kafka}"
PORT="${SOC_KAFKA_PORT:-9092}"
WAIT="${SOC_KAFKA_WAIT:-30}"
BROKER_LOG="${SOC_KAFKA_LOG:-warn}"
PID_FILE="$DIR/tansu.pid"
LOG="$DIR/tansu.log"
WORK="$DIR/work"
URL="tcp://127.0.0.1:${PORT}"

PROC="tansu"
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: ERROR: $*" >&2; exit 1; }

# --- helpers -------------------------------------------------------------------------

# Whether something accepts TCP connections on the port.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null
}

log_tail() {
    if [ -s "$LOG" ]; then
        echo "---- last lines of $LOG ----" >&2
        tail -n 40 "$LOG" >&2
    fi
}

# --- commands ------------------------------------------------------------------------

cmd_install() {
    if [ -x "$BIN" ]; then
        say "tansu is already installed at $BIN ($("$BIN" --version 2>/dev/null || echo "version unknown"))"
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain first"
    mkdir -p "$ROOT"
    say "building tansu $TANSU_VERSION into $ROOT (about 10 minutes on 2 cores; cached afterwards)"
    # dynostore: the memory:// storage engine (default features compile none).
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore --root "$ROOT"
    [ -x "$BIN" ] || die "cargo install finished but $BIN is missing"
    say "installed $BIN"
}

cmd_start() {
    local pid
    if pid="$(live_pid)"; then
        if port_open; then
            say "already running (pid $pid) at $URL"
            return 0
        fi
        say "pid $pid is alive but port $PORT does not accept connections yet; waiting"
    else
        if port_open; then
            die "port $PORT on 127.0.0.1 is taken by a process this script did not start; stop it or set SOC_KAFKA_PORT"
        fi
        [ -x "$BIN" ] || die "tansu not found at $BIN; run: $0 install"
        rm -f "$PID_FILE"
        mkdir -p "$DIR"
        # An empty working directory: tansu loads a `.env` from its cwd.
        rm -rf "$WORK"
        mkdir -p "$WORK"
        {
            echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) start: $BIN broker on $URL (memory storage)"
        } >>"$LOG"
        # env -i: no LISTENER_URL, ADVERTISED_LISTENER_URL, STORAGE_ENGINE, CLUSTER_ID, ...
        # leaks in from the caller. setsid + nohup: the broker outlives this shell.
        (cd "$WORK" && exec env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$WORK" RUST_LOG="$BROKER_LOG" \
            setsid nohup "$BIN" broker \
            --listener-url "$URL" \
            --advertised-listener-url "$URL" \
            --storage-engine "memory://tansu/" \
            >>"$LOG" 2>&1 </dev/null) &
        pid=$!
        echo "$pid" >"$PID_FILE"
        say "started tansu (pid $pid), log $LOG"
    fi
    wait_ready "$pid" port_open
    say "ready at $URL (bootstrap servers: 127.0.0.1:$PORT)"
}

cmd_stop() {
    local pid
    if ! pid="$(stop_pid 20)"; then
        say "not running"
        return 0
    fi
    echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) stopped pid $pid" >>"$LOG"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(live_pid)"; then
        if port_open; then
            say "running (pid $pid) at $URL, memory storage, log $LOG"
        else
            say "process $pid is alive but port $PORT does not accept connections"
            return 1
        fi
    elif port_open; then
        say "not started by this script, but something accepts connections on 127.0.0.1:$PORT"
    else
        if [ -x "$BIN" ]; then
            say "not running (installed at $BIN)"
        else
            say "not running and not installed (run: $0 install)"
        fi
        return 3
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|stop|status}" >&2
        exit 2
        ;;
esac
