#!/usr/bin/env bash
# Capture the first IKE_SA_INIT request that strongSwan (charon 5.9) sends as an initiator.
#
# Usage (as root): scripts/capture-ike-sa-init.sh [PROPOSAL [OUTPUT]]
#   PROPOSAL  IKE proposal, default aes128-sha1-modp1024
#   OUTPUT    file for the raw UDP payload, default tests/data/strongswan-ike-sa-init.bin
#             (relative paths are taken from the repository root)
#
# Topology (names and addresses private to this script, see docs/STRONGSWAN.md):
#   netns wirecap-a: charon (initiator), veth wirecap-va 10.250.77.1/24
#   netns wirecap-b: python UDP listener on 10.250.77.2:500, veth wirecap-vb 10.250.77.2/24
# The listener writes the first datagram it receives and exits; it never answers, so charon
# only ever sends IKE_SA_INIT. Charon is killed by its PID and both namespaces are deleted on
# every exit path (trap).
set -euo pipefail
cd "$(dirname "$0")/.."

PROPOSAL=${1:-aes128-sha1-modp1024}
OUT=${2:-tests/data/strongswan-ike-sa-init.bin}
NS_A=wirecap-a
NS_B=wirecap-b
ADDR_A=10.250.77.1
ADDR_B=10.250.77.2
TIMEOUT=20

WORK=$(mktemp -d /tmp/wirecap.XXXXXX)
CHARON_PID=
LISTENER_PID=

cleanup() {
    set +e
    if [ -n "$CHARON_PID" ]; then kill "$CHARON_PID" 2>/dev/null; wait "$CHARON_PID" 2>/dev/null; fi
    if [ -n "$LISTENER_PID" ]; then kill "$LISTENER_PID" 2>/dev/null; wait "$LISTENER_PID" 2>/dev/null; fi
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# Stale namespaces from an interrupted earlier run would make `ip netns add` fail.
ip netns del "$NS_A" 2>/dev/null || true
ip netns del "$NS_B" 2>/dev/null || true

ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add wirecap-va netns "$NS_A" type veth peer name wirecap-vb netns "$NS_B"
ip -n "$NS_A" addr add "$ADDR_A/24" dev wirecap-va
ip -n "$NS_B" addr add "$ADDR_B/24" dev wirecap-vb
ip -n "$NS_A" link set lo up
ip -n "$NS_B" link set lo up
ip -n "$NS_A" link set wirecap-va up
ip -n "$NS_B" link set wirecap-vb up

cat >"$WORK/listener.py" <<PY
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("$ADDR_B", 500))
s.settimeout($TIMEOUT)
open("$WORK/ready", "w").close()
data, peer = s.recvfrom(65535)
with open(sys.argv[1], "wb") as f:
    f.write(data)
print("captured %d bytes from %s:%d" % (len(data), peer[0], peer[1]))
PY
ip netns exec "$NS_B" python3 "$WORK/listener.py" "$WORK/capture.bin" &
LISTENER_PID=$!
for _ in $(seq 50); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
[ -e "$WORK/ready" ] || { echo "listener did not start" >&2; exit 1; }

cat >"$WORK/strongswan.conf" <<CONF
charon {
    load_modular = no
    load = random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici
    install_routes = no
    install_virtual_ip = no
    retransmit_tries = 1
    filelog {
        test {
            path = $WORK/charon.log
            default = 1
            ike = 2
            flush_line = yes
        }
    }
    syslog {
        daemon {
            default = -1
        }
    }
    plugins {
        vici {
            socket = unix://$WORK/charon.vici
        }
    }
}
CONF

cat >"$WORK/swanctl.conf" <<CONF
connections {
    wirecap {
        version = 2
        local_addrs = $ADDR_A
        remote_addrs = $ADDR_B
        vips = 0.0.0.0
        proposals = $PROPOSAL
        local {
            auth = psk
            id = client1.example
        }
        remote {
            auth = psk
        }
        children {
            wirecap {
                remote_ts = 192.168.0.0/24
                esp_proposals = aes128-sha1
                start_action = none
            }
        }
    }
}
secrets {
    ike-wirecap {
        id-a = client1.example
        secret = "wirecap-not-a-secret"
    }
}
CONF

# Private /run: charon hard-codes /var/run/charon.pid.
ip netns exec "$NS_A" sh -c "mount -t tmpfs wirecap /run && exec env STRONGSWAN_CONF=$WORK/strongswan.conf /usr/lib/ipsec/charon" &
CHARON_PID=$!
for _ in $(seq 100); do [ -S "$WORK/charon.vici" ] && break; sleep 0.1; done
[ -S "$WORK/charon.vici" ] || { echo "charon did not start" >&2; cat "$WORK/charon.log" >&2 || true; exit 1; }

# swanctl complains about the missing x509/private/... directories next to the file: harmless.
if ! swanctl --load-all --noprompt --file "$WORK/swanctl.conf" --uri "unix://$WORK/charon.vici" \
    >"$WORK/swanctl-load.log" 2>&1; then
    cat "$WORK/swanctl-load.log" >&2
    exit 1
fi
# Nobody answers: the initiate times out; only the first datagram matters.
swanctl --initiate --child wirecap --timeout 3 --uri "unix://$WORK/charon.vici" >/dev/null 2>&1 || true

if ! wait "$LISTENER_PID"; then
    LISTENER_PID=
    echo "no datagram captured" >&2
    cat "$WORK/charon.log" >&2 || true
    exit 1
fi
LISTENER_PID=
grep -E 'sending packet|generating IKE_SA_INIT' "$WORK/charon.log" || true
mkdir -p "$(dirname "$OUT")"
cp "$WORK/capture.bin" "$OUT"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes)"
