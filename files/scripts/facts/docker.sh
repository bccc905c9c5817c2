# fact docker: docker=STATE|IS_MANAGER (swarm state, ControlAvailable), or docker=down.
fact_docker() {
  echo "docker=$(docker info --format '{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}' 2>/dev/null || echo down)"
}
