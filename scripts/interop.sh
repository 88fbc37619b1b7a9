#!/usr/bin/env bash
# Runs only the strongSwan interop suite (tests/interop.rs): real charon clients in network
# namespaces built by the tests themselves, against the gateway under test.
#
# Usage (as root, Debian 12 with strongswan-charon strongswan-swanctl iperf3 nftables iproute2):
#   scripts/interop.sh                  # gateway = ipsec-server (this crate's binary)
#   INTEROP_GATEWAY=strongswan scripts/interop.sh   # gateway = strongSwan (baseline / harness check)
#   scripts/interop.sh two_clients      # extra arguments go to the test binary (filters, --nocapture)
# INTEROP_KEEP=1 keeps the temp dir (configs, logs) of a failed test.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/interop.sh: run as root (network namespaces, TUN, strongSwan)" >&2
    exit 1
fi
for tool in /usr/lib/ipsec/charon swanctl nft ip sha256sum ping; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "scripts/interop.sh: $tool missing; see scripts/test-all for the packages" >&2
        exit 1
    fi
done

# The suites' tests are marked #[ignore = "needs root: …"] for users without root.
exec cargo test --test interop --test lifecycle --test listen -- --include-ignored --test-threads=2 "$@"
