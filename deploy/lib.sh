# Shared by the scripts of this folder (clickhouse.sh, kafka.sh, medallion.sh, test.sh); sourced, not run.
# The caller sets PID_FILE, PROC (a word of the server's command line), WAIT (seconds) and
# defines say, die and log_tail.

# Prints the pid when the pid file names a live $PROC process, else fails.
live_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A stale pid file may name a recycled pid: only trust it if that process is ours.
    if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$PROC"; then
        return 1
    fi
    echo "$pid"
}

# Waits up to $WAIT seconds until the command "$@" succeeds while process $1 lives.
# Returns 0 when ready; otherwise prints the log tail, stops the process and dies.
wait_ready() {
    local pid="$1"
    shift
    local i=0
    while [ "$i" -lt $((WAIT * 5)) ]; do
        if "$@"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log_tail
            rm -f "$PID_FILE"
            die "$PROC (pid $pid) exited during start-up; see the log above"
        fi
        sleep 0.2
        i=$((i + 1))
    done
    log_tail
    kill "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    die "$PROC (pid $pid) was not ready ($*) within ${WAIT}s; stopped it"
}

# Stops the process of the pid file: SIGTERM, SIGKILL after $1 seconds. Prints the pid it
# stopped; fails (after removing a stale pid file) when nothing was running.
stop_pid() {
    local grace="$1" pid
    if ! pid="$(live_pid)"; then
        rm -f "$PID_FILE"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$i" -ge $((grace * 5)) ]; then
            say "pid $pid did not stop within ${grace} s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
        i=$((i + 1))
    done
    rm -f "$PID_FILE"
    echo "$pid"
}

# Installs Debian packages "$@" (through sudo when not root): from the current package lists,
# refreshed with `apt-get update` only when that fails. Fails when they cannot be installed.
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "installing $* needs root (or sudo)" >&2; return 1; }
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
        || { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }
}
