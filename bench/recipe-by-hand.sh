#!/bin/bash
# The seed recipe done by hand over plain OpenSSH: the naive baseline of bench/RESULTS.md.
# What an operator types, step after step, host after host: one ssh per command, no facts, no
# parallelism, no checks beyond `set -e`. Re-runnable (secrets are created only when missing,
# the GPG key only when there is none), but every step is sent again on a re-run.
#
# Usage: recipe-by-hand.sh WORKDIR KNOWN_HOSTS KEY REGISTRY_HOST PORT MANAGER_IP REGISTRY_IP REGISTRY_NODE NODE_IP...
# Env: REGISTRY_PASSWORD (login_user's password), LOGIN_USER (default lenain), SSH (default ssh; the
# bench passes bench/ssh-count to count commands), IMAGE, STACK, DATA_DIR, CONFIG_DIR, LABEL, REALM.
set -euo pipefail
work=$1 kh=$2 key=$3 host=$4 port=$5 manager=$6 registry=$7 registry_node=$8
shift 8
nodes=("$@")
user=${LOGIN_USER:-lenain} image=${IMAGE:-registry:2} stack=${STACK:-onsen-registry}
data_dir=${DATA_DIR:-/var/lib/registry} config_dir=${CONFIG_DIR:-/srv/docker/onsen-registry}
label=${LABEL:-registry} realm=${REALM:-Onsen Registry}
SSH=${SSH:-ssh}
endpoint="$host:$port"
on() { local ip=$1; shift; "$SSH" -o BatchMode=yes -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -i "$key" "root@$ip" "$@"; }

mkdir -p "$work" && chmod 0700 "$work" && cd "$work"
umask 077

# 1. a self-signed certificate with subjectAltName, and htpasswd (bcrypt), on this machine
if [ ! -s registry.crt ]; then
  openssl req -newkey rsa:4096 -nodes -sha256 -keyout registry.key -x509 -days 365 -out registry.crt \
    -subj "/CN=$host" -addext "subjectAltName=DNS:$host" 2>/dev/null
fi
printf '%s' "$REGISTRY_PASSWORD" | htpasswd -iBn "$user" > htpasswd 2>/dev/null
crt_secret="$host.crt-$(sha256sum < registry.crt | cut -c1-8)"
key_secret="$host.key-$(sha256sum < registry.key | cut -c1-8)"

# 2. directories and htpasswd on the registry node
on "$registry" "mkdir -p '$data_dir' '$config_dir/auth' && chmod 0700 '$config_dir/auth'"
on "$registry" "cat > '$config_dir/auth/htpasswd' && chmod 0600 '$config_dir/auth/htpasswd'" < htpasswd

# 3. secrets, label (manager)
on "$manager" "docker secret inspect '$crt_secret' >/dev/null 2>&1 || docker secret create '$crt_secret' -" < registry.crt
on "$manager" "docker secret inspect '$key_secret' >/dev/null 2>&1 || docker secret create '$key_secret' -" < registry.key
on "$manager" "docker node update --label-add '$label=true' '$registry_node'"

# 4. the stack file, written on the manager and deployed
cat > docker-stack.yml <<EOF
version: "3.7"
services:
  registry:
    image: $image
    environment:
      REGISTRY_AUTH: htpasswd
      REGISTRY_AUTH_HTPASSWD_REALM: "$realm"
      REGISTRY_AUTH_HTPASSWD_PATH: /auth/htpasswd
      REGISTRY_HTTP_ADDR: 0.0.0.0:5000
      REGISTRY_HTTP_TLS_CERTIFICATE: /run/secrets/registry.crt
      REGISTRY_HTTP_TLS_KEY: /run/secrets/registry.key
      REGISTRY_HTTP_TLS_MINIMUMTLS: tls1.2
    secrets:
      - {source: $crt_secret, target: registry.crt, mode: 0444}
      - {source: $key_secret, target: registry.key, mode: 0400}
    ports:
      - {target: 5000, published: $port, protocol: tcp, mode: host}
    volumes:
      - {type: bind, source: $data_dir, target: /var/lib/registry}
      - {type: bind, source: $config_dir/auth, target: /auth, read_only: true}
    deploy:
      replicas: 1
      placement: {constraints: ["node.labels.$label == true"]}
      restart_policy: {condition: any}
secrets:
  $crt_secret: {external: true}
  $key_secret: {external: true}
EOF
on "$manager" "mkdir -p '$config_dir' && cat > '$config_dir/docker-stack.yml'" < docker-stack.yml
on "$manager" "docker stack deploy --with-registry-auth --resolve-image never -c '$config_dir/docker-stack.yml' '$stack'"

# 5. wait for the registry: 401 without credentials, 200 with, over TLS verified against the cert
for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert registry.crt "https://$endpoint/v2/" || true)
  [ "$code" = 401 ] && break
  sleep 1
done
[ "$code" = 401 ] || { echo "registry did not answer 401 (got $code)" >&2; exit 1; }
printf 'user = "%s:%s"\n' "$user" "$REGISTRY_PASSWORD" > curl-auth
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert registry.crt -K curl-auth "https://$endpoint/v2/")
[ "$code" = 200 ] || { echo "registry did not answer 200 with credentials (got $code)" >&2; exit 1; }

# 6. every node, one after the other: trust, pass + helper, GPG key, pass init, credsStore, login
for ip in "${nodes[@]}"; do
  on "$ip" "mkdir -p '/etc/docker/certs.d/$endpoint' && cat > '/etc/docker/certs.d/$endpoint/ca.crt'" < registry.crt
  on "$ip" "export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q --no-install-recommends pass golang-docker-credential-helpers >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends pass golang-docker-credential-helpers >/dev/null; }"
  on "$ip" "gpg --batch --list-secret-keys | grep -q . || printf '%s\n' '%no-protection' 'Key-Type: RSA' 'Key-Length: 3072' 'Key-Usage: sign' 'Subkey-Type: RSA' 'Subkey-Length: 3072' 'Subkey-Usage: encrypt' 'Name-Real: docker credentials' 'Name-Email: root@'\$(uname -n) 'Expire-Date: 0' '%commit' | gpg --batch --gen-key 2>/dev/null"
  on "$ip" "pass init \$(gpg --batch --with-colons --list-secret-keys | awk -F: '\$1 == \"fpr\" {print \$10; exit}') >/dev/null"
  on "$ip" "mkdir -p ~/.docker && { grep -q credsStore ~/.docker/config.json 2>/dev/null || echo '{\"credsStore\": \"pass\"}' > ~/.docker/config.json; }"
  printf '%s' "$REGISTRY_PASSWORD" | on "$ip" "docker login -u '$user' --password-stdin '$endpoint' >/dev/null"
done
echo "by hand: done"
