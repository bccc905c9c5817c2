#!/bin/bash
# The floor: plain OpenSSH, one ssh per host started together, then wait for all.
# Usage: floor.sh KNOWN_HOSTS KEY CERT DIR PORT...   (hosts: root@127.0.0.1:PORT)
set -u
kh=$1 key=$2 cert=$3 dir=$4; shift 4
cmd="install -d -m 0755 '$dir' && t=\$(mktemp '$dir/.ca.XXXXXX') && cat > \$t && chmod 0644 \$t && mv \$t '$dir/ca.crt'"
pids=()
for port in "$@"; do
  ssh -o BatchMode=yes -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -i "$key" \
      -p "$port" root@127.0.0.1 "$cmd" < "$cert" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
