# fact manager: the swarm as a manager sees it: node=ID|HOSTNAME|STATUS|AVAILABILITY,
# nodelabels=HOSTNAME|JSON, secret=NAME|CREATED (ours), service=BASE64 of the service's spec JSON;
# or, when the swarm does not answer this manager (no leader while managers elect one, too few managers
# online, not a manager), manager_error=WHAT DOCKER SAID, and nothing else of it or of the tasks fact: an
# empty answer would read as "no nodes, no secrets, no service".
fact_manager() {
  if ! fm_nodes=$(docker node ls --format 'node={{.ID}}|{{.Hostname}}|{{.Status}}|{{.Availability}}' 2>&1); then
    fm_nodes=$(printf '%s' "$fm_nodes" | tr '\n' ' ')
    echo "manager_error=${fm_nodes:-docker node ls failed}"
    fm_unanswered=1  # fact_tasks reads nothing either (each call would wait on the swarm again)
    return 0
  fi
  fm_ids=""  # the IDs from those lines: no second `docker node ls` (each docker call is ~20 ms on a node)
  for fm_line in $fm_nodes; do
    case $fm_line in node=*) fm_line=${fm_line#node=}; fm_ids="$fm_ids ${fm_line%%|*}" ;; esac
  done
  if [ -n "$fm_ids" ]; then
    echo "$fm_nodes"
    docker node inspect --format 'nodelabels={{.Description.Hostname}}|{{json .Spec.Labels}}' $fm_ids 2>/dev/null
  fi
  docker secret ls --filter "label=io.swarm-registry.stack=$stack" --format 'secret={{.Name}}|{{.CreatedAt}}' 2>/dev/null
  echo "service=$(docker service inspect --format '{{json .Spec}}' "$service" 2>/dev/null | base64 -w0)"
}
