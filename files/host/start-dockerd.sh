#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; start one (vfs storage) if none does.
# Polls until `docker info` answers; fails (non-zero) after 60 s, printing the engine's log tail.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  echo "dockerd: already answering"
  exit 0
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl start docker || true
fi
pidfile=/var/run/docker.pid
running() {  # the dockerd named by the pid file is alive (pgrep would also see dockerds inside containers)
  [ -s "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" = dockerd ]
}
if ! docker info >/dev/null 2>&1 && ! running; then
  # A dockerd that was killed (not stopped) leaves its pid files behind, and a new one then
  # refuses to start ("pid file found"): none of ours runs, so they are stale.
  rm -f "$pidfile" /var/run/docker/containerd/containerd.pid
  log=/var/log/swarm-registry-dockerd.log
  echo "dockerd: starting (storage driver vfs, log $log)"
  nohup dockerd --storage-driver=vfs >"$log" 2>&1 &
fi
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd: answering"
    exit 0
  fi
  sleep 0.5
done
echo "dockerd: no Docker engine answered within 60 s; last lines of its log:" >&2
tail -n 20 /var/log/swarm-registry-dockerd.log >&2 || true
exit 1
