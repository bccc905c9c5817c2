# deploy: `docker stack deploy` of the stack file on stdin. When the service does not exist yet,
# first wait (at most 30 s) for a network left by an earlier `docker stack rm` to go: deploying
# into it fails with "network ... not found".
set -u
if ! docker service inspect "$service" >/dev/null 2>&1; then
  waited=0
  while [ -n "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ] && [ "$waited" -lt 60 ]; do
    sleep 0.5; waited=$((waited + 1))
  done
fi
exec docker stack deploy --with-registry-auth --resolve-image "$resolve_image" --compose-file - "$stack"
