#!/usr/bin/env bash
# The whole test suite, against the real servers.
#
# Installs (once; cached) and starts a Kafka-protocol broker (Tansu) and ClickHouse on
# 127.0.0.1, runs every test of the workspace with SOC_REQUIRE_SERVERS=1 (so a test that
# needs a server fails instead of skipping), and stops the servers on exit.
#
#   bash deploy/test.sh                 # everything
#   bash deploy/test.sh -p soc-store    # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
here="$(pwd)"

log() { printf '\n== %s\n' "$*"; }

cleanup() {
  set +e
  log "stopping servers"
  bash "$here/deploy/kafka.sh" stop
  bash "$here/deploy/clickhouse.sh" stop
  bash "$here/deploy/medallion.sh" stop
}
trap cleanup EXIT

log "ClickHouse: install and start"
bash deploy/clickhouse.sh install
bash deploy/clickhouse.sh start

# A real syslog forwarder for the collector's interop test (rsyslog with its TLS driver).
log "rsyslog and rsyslog-gnutls (syslog over TLS interop client): install"
have_rsyslog_tls() {
  [ -x /usr/sbin/rsyslogd ] || return 1
  for f in /usr/lib/*/rsyslog/lmnsd_gtls.so /usr/lib/rsyslog/lmnsd_gtls.so; do
    [ -e "$f" ] && return 0
  done
  return 1
}
if ! have_rsyslog_tls; then
  # shellcheck source=deploy/lib.sh
  . deploy/lib.sh
  apt_install rsyslog rsyslog-gnutls
fi

# The NCSC stand-in: medallion (TAXII 2.1) and stix2-validator in a cached venv. The
# forwarder's tests start their own medallion (they restart it) from the same venv.
log "TAXII 2.1 server (medallion) and stix2-validator: install and start"
bash deploy/medallion.sh install
bash deploy/medallion.sh start
export SOC_TEST_TAXII="$(bash deploy/medallion.sh collection-url)"
export SOC_MEDALLION="$(bash deploy/medallion.sh path-medallion)"
export SOC_STIX2_VALIDATOR="$(bash deploy/medallion.sh path-validator)"

# The broker's first build takes ~10 minutes; build the tests meanwhile.
log "Kafka-protocol broker: install (cached after the first time) while the tests compile"
bash deploy/kafka.sh install > target-kafka-install.log 2>&1 &
broker_build=$!
cargo test --workspace --locked --no-run "$@"
if ! wait "$broker_build"; then
  tail -50 target-kafka-install.log
  echo "error: the broker could not be installed (log above)" >&2
  exit 1
fi
rm -f target-kafka-install.log
bash deploy/kafka.sh start

export SOC_TEST_KAFKA="127.0.0.1:${SOC_KAFKA_PORT:-9092}"
export SOC_TANSU="${SOC_TOOLS_DIR:-$HOME/.cache/soc-tools}/tansu/bin/tansu"  # collector fault tests start their own broker
export SOC_TEST_CLICKHOUSE="http://127.0.0.1:${SOC_CLICKHOUSE_HTTP_PORT:-8123}"
export SOC_REQUIRE_SERVERS=1

log "cargo test (servers: kafka $SOC_TEST_KAFKA, clickhouse $SOC_TEST_CLICKHOUSE)"
cargo test --workspace --locked "$@"

df -h . || true
log "browser tests of the web UI (dashboards/e2e)"
bash dashboards/e2e/run.sh
