# fact manager: the swarm as a manager sees it: node=ID|HOSTNAME|STATUS|AVAILABILITY,
# nodelabels=HOSTNAME|JSON, secret=NAME|CREATED (ours), service=BASE64 of the service's spec JSON.
fact_manager() {
  docker node ls --format 'node={{.ID}}|{{.Hostname}}|{{.Status}}|{{.Availability}}' 2>/dev/null
  fm_nodes=$(docker node ls -q 2>/dev/null)
  [ -n "$fm_nodes" ] && docker node inspect --format 'nodelabels={{.Description.Hostname}}|{{json .Spec.Labels}}' $fm_nodes 2>/dev/null
  docker secret ls --filter "label=io.swarm-registry.stack=$stack" --format 'secret={{.Name}}|{{.CreatedAt}}' 2>/dev/null
  echo "service=$(docker service inspect --format '{{json .Spec}}' "$service" 2>/dev/null | base64 -w0)"
}
