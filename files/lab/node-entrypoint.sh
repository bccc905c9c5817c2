#!/bin/sh
# Entrypoint of a swarm-registry lab node (PID 1 is docker's --init).
# Makes /sys and the cgroup v1 hierarchy writable, starts sshd and dockerd,
# then waits; on SIGTERM (docker stop) it stops dockerd cleanly.
set -u

log() { echo "[node-entrypoint] $*"; }

# --- /sys and cgroups read-write (the container is not --privileged) -------
# Docker mounts them read-only; the cgroup dirs are bind mounts, which need
# "remount,bind,rw" (a plain remount would touch the shared superblock).
remount_rw() {
    mount -o remount,rw "$1" 2>/dev/null || mount -o remount,bind,rw "$1" 2>/dev/null \
        || log "warning: cannot remount $1 read-write"
}
remount_rw /sys
if mountpoint -q /sys/fs/cgroup; then
    remount_rw /sys/fs/cgroup
fi
for d in /sys/fs/cgroup/*; do
    [ -d "$d" ] || continue
    if mountpoint -q "$d"; then
        remount_rw "$d"
    fi
done
rm -f /run/swarm-registry-lab.cgroup-ro
if [ -d /sys/fs/cgroup/pids ]; then
    if mkdir /sys/fs/cgroup/pids/.lab-probe 2>/dev/null; then
        rmdir /sys/fs/cgroup/pids/.lab-probe
    else
        log "error: the cgroup hierarchy is still read-only; containers in this node will not start"
        touch /run/swarm-registry-lab.cgroup-ro
    fi
fi

# --- leftovers of a previous run (the container may have been stopped) -------
mkdir -p /run/lock /run/sshd
chmod 0755 /run/sshd
rm -f /run/sshd.pid /run/docker.pid /run/docker/containerd/containerd.pid

# --- per-node SSH host keys (the image ships none) ---------------------------
ssh-keygen -A >/dev/null

# --- sshd --------------------------------------------------------------------
/usr/sbin/sshd -E /var/log/sshd.log || log "error: sshd failed to start"

# --- dockerd -----------------------------------------------------------------
dockerd --storage-driver=vfs >>/var/log/dockerd.log 2>&1 &
dockerd_pid=$!

stop() {
    log "stopping"
    kill -TERM "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
    if [ -f /run/sshd.pid ]; then
        kill -TERM "$(cat /run/sshd.pid)" 2>/dev/null
    fi
    exit 0
}
trap stop TERM INT

log "sshd and dockerd started"
while :; do
    sleep 3600 &
    wait $!
done
