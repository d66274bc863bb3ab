#!/usr/bin/env bash
# Canh Gac: a local TAXII 2.1 server (medallion, PyPI) standing in for the NCSC, for development
# and CI, started by hand.
#
#   deploy/medallion.sh install   # python venv with medallion + stix2-validator (once; cached)
#   deploy/medallion.sh start     # loopback server, generated config, waits for discovery
#   deploy/medallion.sh stop      # stops the server started by `start` (pid file)
#   deploy/medallion.sh status    # running or not, URLs
#
# Every command is idempotent. Settings (environment):
#   SOC_TOOLS_DIR        cache of tools                  default $HOME/.cache/soc-tools (venv: medallion/venv)
#   SOC_MEDALLION_DIR    pid file, log, config, data     default $HOME/.local/share/soc/medallion
#   SOC_MEDALLION_PORT   port on 127.0.0.1               default 5010
#   SOC_MEDALLION_WAIT   seconds to wait for readiness   default 30
#
# The server (data from deploy/ncsc/make_data.py) has API roots `/api1/` (a read-write
# collection, COLLECTION, and a read-only one, RO_COLLECTION) and `/small/` (2 KB request
# limit, SMALL_COLLECTION), and one user (USER_NAME/PASSWORD: a test account, never a real
# secret). Storage is deploy/ncsc/persistent_backend.py: medallion's memory backend saved to
# a JSON file after every change, so a restart keeps what was stored (`start` begins from an
# empty data set). Test server only: plain HTTP on loopback.
#
# stix2-validator is installed in the same venv. Tests find the executables through
# SOC_STIX2_VALIDATOR (`path-validator` prints it) and SOC_MEDALLION (`path-medallion`), or
# else in the venv above; `collection-url` prints the read-write collection's objects URL
# (deploy/test.sh exports it as SOC_TEST_TAXII).
set -euo pipefail

MEDALLION_VERSION="${SOC_MEDALLION_VERSION:-3.0.0}"
VALIDATOR_VERSION="${SOC_STIX2_VALIDATOR_VERSION:-3.2.0}"
TOOLS_DIR="${SOC_TOOLS_DIR:-$HOME/.cache/soc-tools}"
VENV="$TOOLS_DIR/medallion/venv"
BIN="$VENV/bin/medallion"
DIR="${SOC_MEDALLION_DIR:-$HOME/.local/share/soc/medallion}"
PORT="${SOC_MEDALLION_PORT:-5010}"
WAIT="${SOC_MEDALLION_WAIT:-30}"
PID_FILE="$DIR/medallion.pid"
LOG="$DIR/medallion.log"
CONF="$DIR/config.json"
DATA="$DIR/data.json"
HERE="$(cd "$(dirname "$0")" && pwd)"
USER_NAME="soc-test"
PASSWORD="soc-test-password"
COLLECTION="02136032-d72e-4b60-8b5b-eda3dc649f3a"
RO_COLLECTION="a81886c7-7d86-41ee-a8c8-c83d57569873"
SMALL_COLLECTION="47436625-6f94-4b97-a92d-41a1d93840a3"
BASE="http://127.0.0.1:${PORT}"

PROC="medallion"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

say() { echo "medallion.sh: $*"; }
die() { echo "medallion.sh: ERROR: $*" >&2; exit 1; }

log_tail() {
    if [ -s "$LOG" ]; then
        echo "---- last lines of $LOG ----" >&2
        tail -n 40 "$LOG" >&2
    fi
}

# Whether the discovery resource answers with the test account.
ready() {
    curl -sf -o /dev/null -u "$USER_NAME:$PASSWORD" -H 'Accept: application/taxii+json;version=2.1' \
        "$BASE/taxii2/" 2>/dev/null
}

cmd_install() {
    if [ -x "$BIN" ] && [ -x "$VENV/bin/stix2_validator" ]; then
        say "medallion is already installed in $VENV"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "medallion==$MEDALLION_VERSION" "stix2-validator==$VALIDATOR_VERSION"
    [ -x "$BIN" ] || die "pip finished but $BIN is missing"
    say "installed medallion $MEDALLION_VERSION and stix2-validator $VALIDATOR_VERSION in $VENV"
}

# The data file the backend starts from: discovery, one API root, two collections, no objects.
write_data() {
    python3 "$HERE/ncsc/make_data.py" "$BASE" "$COLLECTION" "$RO_COLLECTION" "$SMALL_COLLECTION" >"$DATA"
}

write_config() {
    cat >"$CONF" <<JSON
{
  "backend": {"module": "persistent_backend", "module_class": "PersistentMemoryBackend", "filename": "$DATA"},
  "users": {"$USER_NAME": "$PASSWORD"},
  "taxii": {"max_page_size": 100}
}
JSON
}

cmd_start() {
    local pid
    if pid="$(live_pid)"; then
        if ready; then
            say "already running (pid $pid) at $BASE/taxii2/"
            return 0
        fi
        say "pid $pid is alive but not ready yet; waiting"
    else
        if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
            die "port $PORT on 127.0.0.1 is taken by a process this script did not start; set SOC_MEDALLION_PORT"
        fi
        [ -x "$BIN" ] || die "medallion not found at $BIN; run: $0 install"
        rm -f "$PID_FILE"
        mkdir -p "$DIR"
        write_data
        write_config
        echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) start: medallion on $BASE" >>"$LOG"
        (cd "$DIR" && exec env PYTHONPATH="$HERE/ncsc" PYTHONDONTWRITEBYTECODE=1 setsid nohup "$BIN" --host 127.0.0.1 --port "$PORT" \
            "$CONF" >>"$LOG" 2>&1 </dev/null) &
        pid=$!
        echo "$pid" >"$PID_FILE"
        say "started medallion (pid $pid), log $LOG"
    fi
    wait_ready "$pid" ready
    say "ready: discovery $BASE/taxii2/, collection $BASE/api1/collections/$COLLECTION/objects/"
}

cmd_stop() {
    local pid
    if ! pid="$(stop_pid 10)"; then
        say "not running"
        return 0
    fi
    echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) stopped pid $pid" >>"$LOG"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(live_pid)"; then
        if ready; then
            say "running (pid $pid): discovery $BASE/taxii2/, log $LOG"
        else
            say "process $pid is alive but discovery does not answer"
            return 1
        fi
    else
        if [ -x "$BIN" ]; then say "not running (installed in $VENV)"; else say "not running and not installed (run: $0 install)"; fi
        return 3
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    path-validator) echo "$VENV/bin/stix2_validator" ;;
    path-medallion) echo "$BIN" ;;
    collection-url) echo "$BASE/api1/collections/$COLLECTION/objects/" ;;
    *)
        echo "usage: $0 {install|start|stop|status|path-validator|path-medallion|collection-url}" >&2
        exit 2
        ;;
esac
