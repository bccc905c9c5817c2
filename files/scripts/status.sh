# status: what one host looks like, read in one command (nothing is changed).
# Usage: sh -c "$(cat status.sh)" status ENDPOINT MANAGER(0|1) SERVICE
# Prints key=value lines: docker (swarm state|is manager), trust (sha256 of certs.d/ENDPOINT/ca.crt),
# login (1 when the credential store knows ENDPOINT), and on a manager the service's tasks.
set -u
endpoint=$1 manager=$2 service=$3
echo "docker=$(docker info --format '{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}' 2>/dev/null || echo down)"
echo "trust=$(sha256sum "/etc/docker/certs.d/$endpoint/ca.crt" 2>/dev/null | cut -c1-64)"
if command -v docker-credential-pass >/dev/null 2>&1 && timeout 10 docker-credential-pass list 2>/dev/null | grep -qF -e "\"$endpoint\"" -e "\"https://$endpoint\""; then
  echo "login=1"
else
  echo "login=0"
fi
if [ "$manager" = 1 ]; then
  docker service ps "$service" --no-trunc --filter desired-state=running \
    --format 'task={{.ID}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}' 2>/dev/null
fi
