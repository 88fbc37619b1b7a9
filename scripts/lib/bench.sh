# Shared by scripts/bench-tunnel and scripts/bench-tunnels (sourced, not run): the namespace
# topology  clients ↔ gateway ↔ LAN host, process bookkeeping with a cleanup trap, CPU
# accounting from /proc, medians, and starting strongSwan and ipsec-server as peers.
#
# The caller sets BENCH_NAME (log prefix, temp dir name) and then sources this file, which
# sets TAG, the namespace names, TMP and the addresses, and installs the EXIT trap: every
# process started with `spawn` is killed by PID and every namespace deleted. Addresses exist
# only inside the namespaces. Variables read at call time: POOL, KEEP, CLIENTS (see
# `topology`), GW_EXTRA_GATEWAY and GW_EXTRA (extra lines for ipsec-server's config: inside
# its [gateway] table, and appended at the end).

TAG="bt$$"
NS_CL="$TAG-cl"
NS_GW="$TAG-gw"
NS_LAN="$TAG-lan"
TMP=$(mktemp -d "/tmp/$BENCH_NAME.XXXXXX")
PIDS=()
PSK="bench-tunnel-psk-0123456789"
GW_OUT=172.29.1.1
CL_OUT=172.29.1.2
GW_LAN=192.168.0.1
LAN_HOST=192.168.0.10
POOL=${POOL:-10.0.0.0/24}
# BIN=/path/to/ipsec-server: measure that binary (e.g. a copy of an earlier build) instead of
# building this tree.
BIN=${BIN:-./target/release/ipsec-server}

# Builds the release binary unless BIN names another one or SKIP_BUILD is set.
build_release() {
    [ -n "${SKIP_BUILD:-}" ] && return 0
    [ "$BIN" = ./target/release/ipsec-server ] || return 0
    log "building the release binary"
    cargo build --release --locked -q
}
GW_EXTRA=${GW_EXTRA:-}
GW_EXTRA_GATEWAY=${GW_EXTRA_GATEWAY:-}

log() { echo "[$BENCH_NAME] $*" >&2; }

# The client namespace of client $1 (1, 2, …) and its outside address.
client_ns() { if [ "$1" -eq 1 ]; then echo "$NS_CL"; else echo "$NS_CL$1"; fi; }
client_addr() { echo "172.29.1.$((1 + $1))"; }

all_namespaces() {
    local i
    for i in $(seq "${CLIENTS:-1}"); do client_ns "$i"; done
    echo "$NS_GW"
    echo "$NS_LAN"
}

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for ns in $(all_namespaces); do ip netns del "$ns" 2>/dev/null; done
    if [ -n "${KEEP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Starts "$@" in namespace $1 in the background, output to $TMP/$2.log; sets SPAWNED_PID.
spawn() {
    local ns=$1 name=$2; shift 2
    ip netns exec "$ns" "$@" >"$TMP/$name.log" 2>&1 &
    SPAWNED_PID=$!
    PIDS+=("$SPAWNED_PID")
}

stop_pid() {
    local p=$1
    kill "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# Stops every process spawned so far and deletes the namespaces (between runs).
teardown() {
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    PIDS=()
    for ns in $(all_namespaces); do ip netns del "$ns" 2>/dev/null || true; done
}

# Without CLIENTS: one client on a veth straight to the gateway (bench-tunnel). With
# CLIENTS=K: K client namespaces (172.29.1.2 …) on a bridge in the gateway namespace, so
# N = 1 and N = 8 cross the same path (bench-tunnels).
topology() {
    local ns i
    for ns in $(all_namespaces); do
        ip netns add "$ns"
        in_ns "$ns" ip link set lo up
    done
    # Created inside the namespaces, never in the caller's.
    if [ -z "${CLIENTS:-}" ]; then
        in_ns "$NS_CL" ip link add c0 type veth peer name g0 netns "$NS_GW"
        in_ns "$NS_CL" ip addr add "$CL_OUT/24" dev c0
        in_ns "$NS_CL" ip link set c0 up
        in_ns "$NS_GW" ip addr add "$GW_OUT/24" dev g0
        in_ns "$NS_GW" ip link set g0 up
    else
        in_ns "$NS_GW" ip link add br0 type bridge
        in_ns "$NS_GW" ip addr add "$GW_OUT/24" dev br0
        in_ns "$NS_GW" ip link set br0 up
        for i in $(seq "$CLIENTS"); do
            ns=$(client_ns "$i")
            in_ns "$ns" ip link add c0 type veth peer name "g0c$i" netns "$NS_GW"
            in_ns "$ns" ip addr add "$(client_addr "$i")/24" dev c0
            in_ns "$ns" ip link set c0 up
            in_ns "$NS_GW" ip link set "g0c$i" master br0 up
        done
    fi
    in_ns "$NS_GW" ip link add g1 type veth peer name l0 netns "$NS_LAN"
    in_ns "$NS_GW" ip addr add "$GW_LAN/24" dev g1
    in_ns "$NS_LAN" ip addr add "$LAN_HOST/24" dev l0
    in_ns "$NS_GW" ip link set g1 up
    in_ns "$NS_LAN" ip link set l0 up
    in_ns "$NS_LAN" ip route add default via "$GW_LAN"
    in_ns "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
    # A NIC receives through NAPI with GRO on (the default of every driver), so the kernel may
    # coalesce a client's ESP-in-UDP datagrams for a socket with UDP_GRO; a veth does that only
    # with GRO (and so NAPI) turned on. GRO=off measures the veth default.
    if [ "${GRO:-on}" = on ]; then
        if command -v ethtool >/dev/null 2>&1; then
            for dev in $(in_ns "$NS_GW" ip -o link show type veth | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
                in_ns "$NS_GW" ethtool -K "$dev" gro on >/dev/null || log "ethtool -K $dev gro on failed: GRO stays off"
            done
        else
            log "ethtool missing: the gateway's veths stay without GRO (unlike a NIC)"
        fi
    fi
}

cpu_ticks() { # utime+stime of PID $1 (or of task $1/task/TID), in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

total_ticks() { # busy (non-idle) clock ticks of the whole machine
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat
}

ticks_s() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'; }

# Waits until $2 in namespace $1 is listening on UDP port $3.
wait_udp() {
    for _ in $(seq 100); do
        in_ns "$1" ss -Hlun | awk '{print $4}' | grep -q ":$2\$" && return 0
        sleep 0.1
    done
    return 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- strongSwan ----------------------------------------------------------------------------

strongswan_conf() { # $1 dir
    cat <<EOC
charon {
    load_modular = no
    load = random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici
    install_routes = yes
    install_virtual_ip = yes
    filelog {
        bench {
            path = $1/charon.log
            default = 1
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
            socket = unix://$1/charon.vici
        }
    }
}
EOC
}

start_charon() { # $1 ns, $2 name, $3 swanctl.conf text; sets CHARON_PID, CHARON_URI
    local dir="$TMP/$2"
    mkdir -p "$dir"
    strongswan_conf "$dir" >"$dir/strongswan.conf"
    printf '%s\n' "$3" >"$dir/swanctl.conf"
    # charon's pid file is /var/run/charon.pid: a private /run per instance (docs/STRONGSWAN.md).
    spawn "$1" "$2" sh -c "mount -t tmpfs t /run && exec env STRONGSWAN_CONF=$dir/strongswan.conf /usr/lib/ipsec/charon"
    CHARON_PID=$SPAWNED_PID
    CHARON_URI="unix://$dir/charon.vici"
    for _ in $(seq 100); do [ -S "$dir/charon.vici" ] && break; sleep 0.1; done
    # The vici socket appears before charon is ready for every command: retry until the
    # connection is really loaded.
    for _ in $(seq 50); do
        if in_ns "$1" swanctl --load-all --noprompt --file "$dir/swanctl.conf" --uri "$CHARON_URI" >"$dir/load-all.log" 2>&1 &&
            in_ns "$1" swanctl --list-conns --uri "$CHARON_URI" 2>/dev/null | grep -q ':.*IKEv2'; then
            return 0
        fi
        sleep 0.2
    done
    log "$2: swanctl --load-all did not take"
    return 1
}

gateway_swanctl() {
    cat <<EOC
connections {
    rw {
        version = 2
        local_addrs = $GW_OUT
        proposals = aes128-sha1-modp1024
        pools = clients
        local {
            auth = psk
            id = gw.bench
        }
        remote {
            auth = psk
        }
        children {
            lan {
                local_ts = 192.168.0.0/24
                esp_proposals = aes128-sha1-modp1024
            }
        }
    }
}
pools {
    clients {
        addrs = $POOL
    }
}
secrets {
    ike-gw {
        id-gw = gw.bench
        secret = "$PSK"
    }
}
EOC
}

client_swanctl() { # $1: client identity (default client1.bench)
    local id=${1:-client1.bench}
    cat <<EOC
connections {
    home {
        version = 2
        remote_addrs = $GW_OUT
        vips = 0.0.0.0
        proposals = aes128-sha1-modp1024
        local {
            auth = psk
            id = $id
        }
        remote {
            auth = psk
            id = gw.bench
        }
        children {
            lan {
                remote_ts = 192.168.0.0/24
                esp_proposals = aes128-sha1-modp1024
                start_action = none
            }
        }
    }
}
secrets {
    ike-client {
        id-a = $id
        id-b = gw.bench
        secret = "$PSK"
    }
}
EOC
}

# Starts a strongSwan client in namespace $1 as identity $2 and brings its tunnel up; sets
# CHARON_PID and CLIENT_SRC (its virtual IP).
start_strongswan_client() {
    local ns=$1 id=$2
    start_charon "$ns" "charon-$id" "$(client_swanctl "$id")" || return 1
    in_ns "$ns" swanctl --initiate --child lan --timeout 20 --uri "$CHARON_URI" >"$TMP/initiate-$id.log" 2>&1 ||
        { log "$id: swanctl --initiate failed"; cat "$TMP/initiate-$id.log" >&2; return 1; }
    CLIENT_SRC=$(in_ns "$ns" swanctl --list-sas --uri "$CHARON_URI" |
        sed -n "s/.*local .*\[\([0-9.]*\)\]$/\1/p" | head -1)
}

# ---- ipsec-server --------------------------------------------------------------------------

start_ipsec_server_gateway() { # sets GW_PID
    local dir="$TMP/ipsec-server"
    mkdir -p "$dir/state"
    cat >"$dir/config.toml" <<EOC
[gateway]
vpn_gateway_id = "vpn-bench0001"
region_id = "local"
listen_addrs = ["0.0.0.0"]
ike_port = 500
nat_t_port = 4500
tun_name = "ipsec0"
state_dir = "$dir/state"
control_socket = "$dir/state/control.sock"
$GW_EXTRA_GATEWAY

[ipsec_server]
ipsec_server_name = "bench"
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "$POOL"
psk_enabled = true
psk = "$PSK"

[ipsec_server.ike_config]
ike_enc_alg = "aes"
ike_auth_alg = "sha1"
ike_pfs = "group2"
local_id = "gw.bench"

[ipsec_server.ipsec_config]
ipsec_enc_alg = "aes"
ipsec_auth_alg = "sha1"
ipsec_pfs = "group2"
$GW_EXTRA
EOC
    spawn "$NS_GW" ipsec-server env RUST_LOG=warn "$BIN" run --config "$dir/config.toml"
    GW_PID=$SPAWNED_PID
    wait_udp "$NS_GW" 4500 || { log "ipsec-server did not come up"; cat "$TMP/ipsec-server.log" >&2; return 1; }
}

# Our own client (`ipsec-server client`) in namespace $1; sets CL_PID and CLIENT_SRC.
start_ipsec_server_client() {
    printf '%s' "$PSK" >"$TMP/psk"
    spawn "$1" ipsec-client env RUST_LOG=info "$BIN" client --remote "$GW_OUT" \
        --id client1.bench --remote-id gw.bench --psk-file "$TMP/psk" \
        --remote-ts 192.168.0.0/24 --tun ipsec0
    CL_PID=$SPAWNED_PID
    for _ in $(seq 150); do
        CLIENT_SRC=$(in_ns "$1" ip -4 -o addr show dev ipsec0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
        [ -n "$CLIENT_SRC" ] && break
        kill -0 "$CL_PID" 2>/dev/null || break
        sleep 0.1
    done
}
