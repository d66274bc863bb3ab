#!/usr/bin/env bash
# Canh Gac: a local ClickHouse for development and CI, started by hand (no systemd).
#
#   deploy/clickhouse.sh install   # apt-get install clickhouse-server clickhouse-client (once)
#   deploy/clickhouse.sh start     # own config under the data dir, loopback only, waits for /ping
#   deploy/clickhouse.sh stop      # stops the server started by `start` (pid file)
#   deploy/clickhouse.sh status    # running or not, version, ports
#
# Every command is idempotent. Settings (environment):
#   SOC_CLICKHOUSE_DIR        data dir (config, data, logs, pid)   default $HOME/.local/share/soc/clickhouse
#   SOC_CLICKHOUSE_HTTP_PORT  HTTP interface                       default 8123
#   SOC_CLICKHOUSE_TCP_PORT   native protocol                      default 9000
#   SOC_CLICKHOUSE_WAIT       seconds to wait for /ping on start   default 30
#
# The server listens on 127.0.0.1 only, with one user `default` without a password that is
# accepted from localhost only. It is a test and development server, not a production setup.
set -euo pipefail

DIR="${SOC_CLICKHOUSE_DIR:-$HOME/.local/share/soc/clickhouse}"
HTTP_PORT="${SOC_CLICKHOUSE_HTTP_PORT:-8123}"
TCP_PORT="${SOC_CLICKHOUSE_TCP_PORT:-9000}"
WAIT="${SOC_CLICKHOUSE_WAIT:-30}"
PID_FILE="$DIR/clickhouse-server.pid"
CONFIG="$DIR/config.xml"
USERS="$DIR/users.xml"
LOG="$DIR/log/clickhouse-server.log"
ERR_LOG="$DIR/log/clickhouse-server.err.log"
STDOUT_LOG="$DIR/log/stdout.log"
URL="http://127.0.0.1:${HTTP_PORT}"

PROC="clickhouse"
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"

say() { echo "clickhouse.sh: $*"; }
die() { echo "clickhouse.sh: ERROR: $*" >&2; exit 1; }

# --- helpers -------------------------------------------------------------------------

installed() {
    dpkg-query -W -f='${Status}' clickhouse-server 2>/dev/null | grep -q "install ok installed" &&
        dpkg-query -W -f='${Status}' clickhouse-client 2>/dev/null | grep -q "install ok installed"
}

# The server binary: Debian ships /usr/sbin/clickhouse-server (not on a user's PATH);
# upstream packages ship one `clickhouse` binary with a `server` sub-command.
server_cmd() {
    if command -v clickhouse-server >/dev/null 2>&1; then
        command -v clickhouse-server
    elif [ -x /usr/sbin/clickhouse-server ]; then
        echo /usr/sbin/clickhouse-server
    elif [ -x /usr/bin/clickhouse-server ]; then
        echo /usr/bin/clickhouse-server
    elif command -v clickhouse >/dev/null 2>&1; then
        echo "$(command -v clickhouse) server"
    else
        return 1
    fi
}

ping_ok() {
    [ "$(curl -s --max-time 2 "$URL/ping" 2>/dev/null || true)" = "Ok." ]
}

version() {
    curl -s --max-time 2 "$URL/" --data-binary 'SELECT version()' 2>/dev/null || true
}

log_tail() {
    local f
    for f in "$ERR_LOG" "$LOG" "$STDOUT_LOG"; do
        if [ -s "$f" ]; then
            echo "---- last lines of $f ----" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

write_config() {
    mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas" "$DIR/log"
    cat >"$CONFIG" <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/clickhouse.sh start; edits are overwritten on the next start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$LOG</log>
        <errorlog>$ERR_LOG</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$HTTP_PORT</http_port>
    <tcp_port>$TCP_PORT</tcp_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$USERS</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
    cat >"$USERS" <<'EOF'
<?xml version="1.0"?>
<!-- Written by deploy/clickhouse.sh start; edits are overwritten on the next start. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

# --- commands ------------------------------------------------------------------------

cmd_install() {
    if installed; then
        say "clickhouse-server and clickhouse-client are already installed"
        return 0
    fi
    apt_install clickhouse-server clickhouse-client || die "apt-get could not install clickhouse-server/clickhouse-client"
    installed || die "apt-get finished but clickhouse-server/clickhouse-client are not installed"
    say "installed"
}

cmd_start() {
    local pid
    if pid="$(live_pid)"; then
        if ping_ok; then
            say "already running (pid $pid) at $URL"
            return 0
        fi
        say "pid $pid is alive but $URL/ping does not answer yet; waiting"
    else
        if ping_ok; then
            say "a ClickHouse not started by this script already answers at $URL; leaving it alone"
            return 0
        fi
        local cmd
        cmd="$(server_cmd)" || die "clickhouse-server not found; run: $0 install"
        rm -f "$PID_FILE"
        write_config
        # The server runs as the invoking user (root included: CI runs as root, and 18.16 as
        # well as current `clickhouse server` accept it); newer servers refuse a data dir owned
        # by another user, so check it here with a clear message.
        if [ "$(stat -c %u "$DIR/data")" != "$(id -u)" ]; then
            die "$DIR/data is owned by uid $(stat -c %u "$DIR/data"), not by $(id -un); use another SOC_CLICKHOUSE_DIR"
        fi
        # setsid + nohup: the server outlives this shell and its process group.
        # shellcheck disable=SC2086 # $cmd may be "clickhouse server"
        (cd "$DIR" && exec setsid nohup $cmd --config-file="$CONFIG" \
            >"$STDOUT_LOG" 2>&1 </dev/null) &
        pid=$!
        echo "$pid" >"$PID_FILE"
        say "started $cmd (pid $pid), data in $DIR"
    fi
    wait_ready "$pid" ping_ok
    say "ready at $URL (version $(version))"
}

cmd_stop() {
    local pid
    if ! pid="$(stop_pid 30)"; then
        say "not running"
        return 0
    fi
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(live_pid)"; then
        if ping_ok; then
            say "running (pid $pid) at $URL, native port $TCP_PORT, version $(version), data in $DIR"
        else
            say "process $pid is alive but $URL/ping does not answer"
            return 1
        fi
    elif ping_ok; then
        say "not started by this script, but a ClickHouse answers at $URL (version $(version))"
    else
        say "not running (data dir $DIR)"
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
