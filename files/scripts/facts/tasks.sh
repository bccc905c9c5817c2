# fact tasks: the service's tasks, newest first: task=ID|NODE_ID|DESIRED|STATE|ERROR|SPEC_HASH
# (SPEC_HASH: the io.swarm-registry.spec label the task's container was made with).
fact_tasks() {
  [ -z "${fm_unanswered:-}" ] || return 0  # the manager fact found the swarm not answering
  ft_ids=$(docker service ps -q --no-trunc "$service" 2>/dev/null)
  [ -n "$ft_ids" ] && docker inspect --type task --format \
    'task={{.ID}}|{{.NodeID}}|{{.DesiredState}}|{{.Status.State}}|{{.Status.Err}}|{{index .Spec.ContainerSpec.Labels "io.swarm-registry.spec"}}' \
    $ft_ids 2>/dev/null
  return 0
}
