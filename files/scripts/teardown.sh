# teardown: remove the stack, wait until its task is gone, then its secrets and the node label.
# Variables: stack service node label timeout action (apply|check).
# Prints stack=removed|absent, secrets=N removed, label=removed|absent. `docker stack rm` returns
# before the task is gone (on whichever node it runs), and a secret in use cannot be removed:
# both are polled from this manager, bounded by $timeout.
set -u
if [ "$action" = check ]; then
  docker service inspect "$service" >/dev/null 2>&1 && echo stack=would-remove || echo stack=absent
  echo "secrets=$(docker secret ls -q --filter "label=io.swarm-registry.stack=$stack" | wc -l)"
  [ -n "$(docker node inspect --format "{{index .Spec.Labels \"$label\"}}" "$node" 2>/dev/null)" ] \
    && echo label=would-remove || echo label=absent
  exit 0
fi
if docker service inspect "$service" >/dev/null 2>&1; then
  # may report "Failed to remove some resources" (its network is still used by a stopping task): retried below
  docker stack rm "$stack" >/dev/null 2>&1
  echo stack=removed
else
  echo stack=absent
fi
networks() { docker network ls -q --filter "label=com.docker.stack.namespace=$stack"; }
waited=0
while docker service inspect "$service" >/dev/null 2>&1 || [ -n "$(networks)" ]; do
  [ "$waited" -ge "$timeout" ] && { echo "the registry's service or network did not go within ${timeout}s" >&2; exit 21; }
  networks | xargs -r docker network rm >/dev/null 2>&1
  sleep 1; waited=$((waited + 1))
done
ids=$(docker secret ls -q --filter "label=io.swarm-registry.stack=$stack")
n=0
for id in $ids; do
  tries=0
  until docker secret rm "$id" >/dev/null 2>&1; do
    tries=$((tries + 1)); [ "$tries" -ge "$timeout" ] && { echo "secret $id still in use" >&2; exit 22; }
    sleep 1
  done
  n=$((n + 1))
done
echo "secrets=$n"
if [ "$(docker node inspect --format "{{index .Spec.Labels \"$label\"}}" "$node" 2>/dev/null)" != "" ]; then
  docker node update --label-rm "$label" "$node" >/dev/null || exit 23
  echo label=removed
else
  echo label=absent
fi
