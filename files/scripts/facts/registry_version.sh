# fact registry_version: the registry's task running on this node: registry_image=IMAGE as its container
# runs it, registry_version=what the registry binary inside answers to --version (its last word; the
# binary is `registry` upstream, `docker-registry` in Debian's), else the image's version label.
fact_registry_version() {
  fv_id=$(docker ps -q --filter "label=com.docker.swarm.service.name=$service" 2>/dev/null | head -n 1)
  [ -n "$fv_id" ] || return 0
  echo "registry_image=$(docker inspect --format '{{.Config.Image}}' "$fv_id" 2>/dev/null)"
  fv_v=$(timeout 10 docker exec "$fv_id" registry --version 2>/dev/null) ||
    fv_v=$(timeout 10 docker exec "$fv_id" docker-registry --version 2>/dev/null) || fv_v=""
  fv_v=$(printf '%s\n' "$fv_v" | head -n 1)
  [ -n "$fv_v" ] || fv_v=$(docker inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$fv_id" 2>/dev/null)
  echo "registry_version=${fv_v##* }"
}
