# fact docker: docker=STATE|IS_MANAGER|VERSION (swarm state, ControlAvailable, ServerVersion), or docker=down.
fact_docker() {
  echo "docker=$(docker info --format '{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}|{{.ServerVersion}}' 2>/dev/null || echo down)"
}
