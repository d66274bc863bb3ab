#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from the shared pcaps.
#
#   sensor/fuzz/seed.sh [pcap-dir]
#
# pcap-dir defaults to ../shared/corpora/pcaps relative to the repository root (or $PCAPS).
# Writes corpus/<target>/ next to this script (ignored by git). Uses the sensor's own
# capture reader and decoder (examples/seed.rs), built with stable cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pcaps="${1:-${PCAPS:-$root/../shared/corpora/pcaps}}"
if [ ! -d "$pcaps" ]; then
    echo "no pcap directory: $pcaps" >&2
    exit 1
fi
mapfile -d '' files < <(find "$pcaps" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.zst' -o -name '*.pcapng.zst' -o -name '*.cap' \) -print0 | sort -z)
echo "${#files[@]} captures under $pcaps"
mkdir -p "$here/corpus"
cd "$here"
cargo run --release --example seed -- "$here/corpus" "${files[@]}"
for t in decode sensor_stream dns tls http; do
    mkdir -p "corpus/$t"
    echo "corpus/$t: $(find "corpus/$t" -type f | wc -l) files"
done
