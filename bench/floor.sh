#!/bin/bash
# The floor: plain OpenSSH, one ssh per host started together, then wait for all.
# Usage: floor.sh KNOWN_HOSTS KEY CERT DIR PORT...   (hosts: root@127.0.0.1:PORT)
# Env FLOOR_KEX (optional): one key exchange, e.g. curve25519-sha256 (what paramiko negotiates);
# unset = OpenSSH's default order (sntrup761x25519-sha512@openssh.com first on OpenSSH 9.x).
set -u
kh=$1 key=$2 cert=$3 dir=$4; shift 4
cmd="install -d -m 0755 '$dir' && t=\$(mktemp '$dir/.ca.XXXXXX') && cat > \$t && chmod 0644 \$t && mv \$t '$dir/ca.crt'"
kex=()
[ -n "${FLOOR_KEX:-}" ] && kex=(-o "KexAlgorithms=$FLOOR_KEX")
pids=()
for port in "$@"; do
  ssh "${kex[@]}" -o BatchMode=yes -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -i "$key" \
      -p "$port" root@127.0.0.1 "$cmd" < "$cert" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
