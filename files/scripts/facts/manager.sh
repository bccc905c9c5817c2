# fact manager: the swarm as a manager sees it: node=ID|HOSTNAME|STATUS|AVAILABILITY,
# nodelabels=HOSTNAME|JSON, secret=NAME|CREATED (ours), service=BASE64 of the service's spec JSON.
fact_manager() {
  fm_nodes=$(docker node ls --format 'node={{.ID}}|{{.Hostname}}|{{.Status}}|{{.Availability}}' 2>/dev/null)
  fm_ids=""  # the IDs from those lines: no second `docker node ls` (each docker call is ~20 ms on a node)
  for fm_line in $fm_nodes; do fm_line=${fm_line#node=}; fm_ids="$fm_ids ${fm_line%%|*}"; done
  if [ -n "$fm_ids" ]; then
    echo "$fm_nodes"
    docker node inspect --format 'nodelabels={{.Description.Hostname}}|{{json .Spec.Labels}}' $fm_ids 2>/dev/null
  fi
  docker secret ls --filter "label=io.swarm-registry.stack=$stack" --format 'secret={{.Name}}|{{.CreatedAt}}' 2>/dev/null
  echo "service=$(docker service inspect --format '{{json .Spec}}' "$service" 2>/dev/null | base64 -w0)"
}
