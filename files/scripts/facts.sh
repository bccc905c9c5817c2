# facts: everything setup needs to know about one host, read in one command.
# Usage: sh -c "$(cat facts.sh)" facts MANAGER(0|1) REGISTRY(0|1) IMAGE DATA_DIR AUTH_DIR COMPOSE NODE SERVICE STACK ENDPOINT
# Prints key=value lines (repeated keys for lists); a missing thing prints an empty value.
set -u
manager=$1 registry=$2 image=$3 data_dir=$4 auth_dir=$5 compose=$6 node=$7 service=$8 stack=$9 endpoint=${10}
sum() { sha256sum "$1" 2>/dev/null | cut -c1-64; }
mode() { stat -c %a "$1" 2>/dev/null; }
info=$(docker info --format '{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}|{{.Swarm.NodeAddr}}' 2>/dev/null) \
  || { echo "docker=down"; exit 0; }
echo "docker=$info"
# trust, credential store and login: so a converged host needs no further command
certs="/etc/docker/certs.d/$endpoint"
echo "trust=$(sum "$certs/ca.crt"):$(mode "$certs/ca.crt"):$(mode "$certs")"
echo "trust_strays=$(ls -A "$certs" 2>/dev/null | grep -v -x -F ca.crt | tr '\n' ' ')"
command -v pass >/dev/null 2>&1 && echo pass=1 || echo pass=0
helper=$(command -v docker-credential-pass 2>/dev/null)
echo "helper=$( [ -n "$helper" ] && sum "$helper")"
echo "gpg_id=$( [ -s "$HOME/.password-store/.gpg-id" ] && echo 1)"
echo "dconfig=$(base64 -w0 "$HOME/.docker/config.json" 2>/dev/null)"
if [ -n "$helper" ]; then
  timeout 10 docker-credential-pass list >/dev/null 2>&1
  echo "list=$?"
  echo "stored=$(printf '%s' "$endpoint" | timeout 10 docker-credential-pass get 2>/dev/null | base64 -w0)"
fi
if [ "$registry" = 1 ]; then
  echo "image=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)"
  echo "data_dir=$(mode "$data_dir")"
  echo "auth_dir=$(mode "$auth_dir")"
  echo "htpasswd=$(sum "$auth_dir/htpasswd"):$(mode "$auth_dir/htpasswd")"
  echo "compose=$(sum "$compose"):$(mode "$compose")"
fi
if [ "$manager" = 1 ]; then
  docker node ls --format 'node={{.Hostname}}|{{.ID}}|{{.Status}}|{{.Availability}}' 2>/dev/null
  echo "labels=$(docker node inspect --format '{{json .Spec.Labels}}' "$node" 2>/dev/null)"
  docker secret ls --filter "label=io.swarm-registry.stack=$stack" --format 'secret={{.Name}}|{{.CreatedAt}}' 2>/dev/null
  echo "service=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}|{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}},{{end}}|{{.Spec.Labels}}' "$service" 2>/dev/null)"
  docker service ps "$service" --no-trunc \
    --format 'task={{.ID}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}' 2>/dev/null
fi
