#!/usr/bin/env bash
# Browser tests of the web UI: installs Debian's Chromium if missing, installs the test
# dependencies (npm ci), builds the soc binary (with the UI embedded) unless SOC_BIN names
# one, and runs the tests. Screenshots and the server log go to dashboards/e2e/test-output/.
# Exits non-zero when a test fails.
#
# Environment: SOC_BIN (use this binary), CHROMIUM (default /usr/bin/chromium),
# SOC_E2E_RELEASE=1 (build with --release).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    echo "e2e: installing chromium (apt-get)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
fi
"$chromium" --version || { echo "e2e: $chromium does not run" >&2; exit 1; }

if ! command -v npm >/dev/null; then
    echo "e2e: npm not found; install Node.js 20 and npm (apt-get install -y nodejs npm)" >&2
    exit 1
fi

if [ -n "${SOC_BIN:-}" ]; then SOC_BIN="$(realpath "$SOC_BIN")"; export SOC_BIN; fi
cd "$here"
if [ ! -d node_modules ] || ! cmp -s package-lock.json node_modules/.soc-installed-package-lock.json; then
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.soc-installed-package-lock.json
fi

if [ -z "${SOC_BIN:-}" ]; then
    if [ "${SOC_E2E_RELEASE:-0}" = "1" ]; then profile=release; flag=--release; else profile=debug; flag=; fi
    echo "e2e: building soc ($profile)"
    (cd "$repo" && cargo build -p soc $flag)
    export SOC_BIN="$repo/target/$profile/soc"
fi
echo "e2e: using $SOC_BIN"

mkdir -p test-output
rm -f test-output/*.png
npm test
echo "e2e: passed; screenshots in $here/test-output/"
