#!/bin/bash
# swarm-registry lab: a one-container Ceph cluster serving S3 (dev tooling, not product).
#
# mon "a" + one bluestore OSD on a sparse 10G file + radosgw (beast, port 7480), bootstrapped
# by hand as in Ceph's manual-deployment docs (no cephadm, no mgr). Everything that must
# survive a restart lives in /var/lib/ceph (a docker volume): a restarted container reuses
# its cluster; a fresh volume is bootstrapped. Then it creates the S3 user (keys generated
# by radosgw-admin, written 0600 to $CREDS, never on any command line), writes $READY and
# stays in the foreground until a daemon dies or it is told to stop.
#
# Input: CEPH_IP, the container's fixed address (it is written into the monmap).
set -euo pipefail

IP=${CEPH_IP:?CEPH_IP (the container address) must be set}
S3_UID=${CEPH_S3_UID:-registry}
DATA=/var/lib/ceph
MON_ID=a
RGW_ID=rgw.gw
MON_DIR=$DATA/mon/ceph-$MON_ID
RGW_DIR=$DATA/radosgw/ceph-$RGW_ID
ADMIN_KEYRING=$DATA/admin.keyring
CREDS=$DATA/s3-user.json
READY=/run/ceph-lab/ready
STEP_TIMEOUT=${CEPH_STEP_TIMEOUT:-180}

log() { echo "[ceph-lab] $*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# wait_for WHAT CMD...: run CMD every 0.5 s until it succeeds; die after $STEP_TIMEOUT s or
# when one of the daemons started so far has exited.
wait_for() {
    local what=$1; shift
    local deadline=$((SECONDS + STEP_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || die "a daemon (pid $pid) exited while waiting for $what"
        done
        ((SECONDS < deadline)) || die "timed out after ${STEP_TIMEOUT} s waiting for $what"
        sleep 0.5
    done
}

ceph_ok() { timeout 15 ceph --connect-timeout 10 "$@"; }

rgw_answers() {
    python3 - <<'EOF'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
sys.exit(0 if opener.open("http://127.0.0.1:7480/", timeout=3).status == 200 else 1)
EOF
}

PIDS=()
# stop_pid NAME PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 deadline=$((SECONDS + $3))
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name (pid $pid) still running after $3 s: killing it"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}
stop_all() {
    trap - TERM INT
    log "stopping"
    # One at a time, within docker's stop timeout (30 s): radosgw first (its shutdown does
    # RADOS calls, which hang if the OSD is already gone), then the OSD (it tells the mon it
    # is going down), the mon last.
    stop_pid radosgw "${RGW_PID:-}" 8
    stop_pid ceph-osd "${OSD_PID:-}" 12
    stop_pid ceph-mon "${MON_PID:-}" 6
    log "stopped"
    exit 0
}
trap stop_all TERM INT

umask 022
rm -f "$READY"
mkdir -p /etc/ceph /run/ceph /run/ceph-lab /var/log/ceph "$DATA"/{mon,osd,radosgw,tmp}

# ---------------------------------------------------------------------------------------
# identity of this cluster (kept in the volume)

if [ -s "$DATA/ip" ] && [ "$(cat "$DATA/ip")" != "$IP" ]; then
    die "this data volume belongs to a cluster at $(cat "$DATA/ip"), not $IP: remove the volume (python -m devtools.ceph down)"
fi
if [ ! -s "$DATA/fsid" ]; then
    cat /proc/sys/kernel/random/uuid > "$DATA/fsid"
fi
FSID=$(cat "$DATA/fsid")
echo "$IP" > "$DATA/ip"

cat > /etc/ceph/ceph.conf <<EOF
# written by the swarm-registry lab's Ceph entrypoint at every start
[global]
fsid = $FSID
mon_initial_members = $MON_ID
mon_host = [v2:$IP:3300,v1:$IP:6789]
public_addr = $IP
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_crush_chooseleaf_type = 0
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 5
# No ceph-mgr here (it would cost ~280 MiB): without this the mon raises MGR_DOWN "no active
# mgr" (HEALTH_WARN, then HEALTH_ERR) once the cluster has an OSD and is 2 minutes old.
mon_mgr_mkfs_grace = 315360000
log_to_file = false
# rocksdb at 3 keeps its warnings and errors, not the option dumps of every start
debug_rocksdb = 3/5
mon_cluster_log_to_file = false

[client.admin]
keyring = $ADMIN_KEYRING

[mon]
log_to_stderr = true
err_to_stderr = true

[osd]
log_to_stderr = true
err_to_stderr = true
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 10737418240
osd_memory_target = 1073741824

[client.$RGW_ID]
log_to_stderr = true
err_to_stderr = true
rgw_frontends = beast port=7480 tcp_nodelay=1
EOF

# ---------------------------------------------------------------------------------------
# mon

if [ ! -e "$MON_DIR/done" ]; then
    log "bootstrapping mon.$MON_ID at $IP (fsid $FSID)"
    rm -rf "$MON_DIR" "$DATA/tmp"/*
    tmp=$DATA/tmp
    ceph-authtool --create-keyring "$tmp/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    if [ ! -s "$ADMIN_KEYRING" ]; then
        ceph-authtool --create-keyring "$ADMIN_KEYRING.new" --gen-key -n client.admin \
            --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
        chmod 600 "$ADMIN_KEYRING.new"
        mv "$ADMIN_KEYRING.new" "$ADMIN_KEYRING"
    fi
    ceph-authtool "$tmp/mon.keyring" --import-keyring "$ADMIN_KEYRING" >/dev/null
    monmaptool --create --addv "$MON_ID" "[v2:$IP:3300,v1:$IP:6789]" --fsid "$FSID" "$tmp/monmap" >/dev/null
    mkdir -p "$MON_DIR"
    ceph-mon --mkfs -i "$MON_ID" --monmap "$tmp/monmap" --keyring "$tmp/mon.keyring"
    rm -f "$tmp/mon.keyring" "$tmp/monmap"
    touch "$MON_DIR/done"
fi
ceph-mon -f -i "$MON_ID" &
MON_PID=$!
PIDS+=("$MON_PID")
wait_for "the mon to answer" ceph_ok mon stat

# ---------------------------------------------------------------------------------------
# osd (one, bluestore on a sparse file inside the volume)

if [ ! -s "$DATA/osd-uuid" ]; then
    cat /proc/sys/kernel/random/uuid > "$DATA/osd-uuid"
fi
OSD_UUID=$(cat "$DATA/osd-uuid")
OSD_ID=$(ceph_ok osd new "$OSD_UUID")  # idempotent for the same uuid
[[ "$OSD_ID" =~ ^[0-9]+$ ]] || die "ceph osd new gave '$OSD_ID', not an OSD id"
OSD_DIR=$DATA/osd/ceph-$OSD_ID
if [ ! -e "$OSD_DIR/done" ]; then
    log "bootstrapping osd.$OSD_ID (bluestore, 10G sparse file)"
    rm -rf "$OSD_DIR"
    mkdir -p "$OSD_DIR"
    ceph_ok auth get-or-create "osd.$OSD_ID" mon 'allow profile osd' mgr 'allow profile osd' osd 'allow *' \
        -o "$OSD_DIR/keyring" >/dev/null
    ceph-osd -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID"
    touch "$OSD_DIR/done"
fi
ceph-osd -f -i "$OSD_ID" &
OSD_PID=$!
PIDS+=("$OSD_PID")
osd_up() { [ "$(ceph_ok osd stat -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_up_osds"])')" = 1 ]; }
wait_for "osd.$OSD_ID to be up" osd_up

# ---------------------------------------------------------------------------------------
# radosgw (it creates its own pools) and the S3 user

if [ ! -s "$RGW_DIR/keyring" ]; then
    mkdir -p "$RGW_DIR"
    ceph_ok auth get-or-create "client.$RGW_ID" mon 'allow rw' osd 'allow rwx' -o "$RGW_DIR/keyring.new" >/dev/null
    mv "$RGW_DIR/keyring.new" "$RGW_DIR/keyring"
fi
radosgw -f -n "client.$RGW_ID" --keyring "$RGW_DIR/keyring" &
RGW_PID=$!
PIDS+=("$RGW_PID")
wait_for "radosgw to answer on port 7480" rgw_answers

if ! radosgw-admin user info --uid="$S3_UID" >/dev/null 2>&1; then
    log "creating S3 user $S3_UID (keys generated by radosgw-admin)"
    radosgw-admin user create --uid="$S3_UID" --display-name="swarm-registry lab" >/dev/null
fi
( umask 077; radosgw-admin user info --uid="$S3_UID" > "$CREDS.new" && mv "$CREDS.new" "$CREDS" )

touch "$READY"
log "ready: S3 on http://$IP:7480 (mon $MON_PID, osd $OSD_PID, radosgw $RGW_PID)"

# ---------------------------------------------------------------------------------------
# foreground: exit (stopping the others) as soon as one daemon dies

set +e
wait -n "${PIDS[@]}"
rc=$?
for name in MON OSD RGW; do
    pid_var=${name}_PID
    kill -0 "${!pid_var}" 2>/dev/null || log "$name daemon (pid ${!pid_var}) exited"
done
rm -f "$READY"
kill -TERM "${PIDS[@]}" 2>/dev/null
wait
die "a daemon exited (status $rc)"
