# gc: `garbage-collect` of the registry's storage in a one-off container of the registry's own image
# (its config.yml, data_dir bind-mounted where the service mounts it), named $name so two never run at
# once. A real collection runs only while this node's registry task is read-only (pushes refused).
# With storage s3 ($storage), the collection runs in this node's read-only registry task itself (its config
# secret holds the S3 keys; no one-off container, no key on disk) and prints no byte counts.
# Prints: before=BYTES after=BYTES (du -sb data_dir), marked=N blobs=N manifests=N (eligible for
# deletion), eligible_bytes=N (size of the eligible blobs, measured before a --dry-run), empty=1 (no
# repository yet: nothing to collect), rc=RC.
set -u
if [ "$dry_run" != 1 ]; then
  tasks=$(docker ps -q --filter "label=com.docker.swarm.service.name=$service")
  [ -n "$tasks" ] || { echo "no running task of $service on this node: gc runs only beside a read-only registry" >&2; exit 20; }
  for t in $tasks; do
    docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$t" | grep -q '^REGISTRY_STORAGE_MAINTENANCE_READONLY=' ||
      { echo "the registry task $t is not read-only: not collecting while pushes are possible" >&2; exit 21; }
  done
fi
log=$(mktemp) || exit 10
on_exit 'rm -f "$log"'
[ "$storage" = s3 ] || echo "before=$(du -sb "$data_dir" | cut -f1)"
set --
[ "$dry_run" = 1 ] && set -- "$@" --dry-run
[ "$delete_untagged" = 1 ] && set -- "$@" --delete-untagged
if [ "$storage" = s3 ]; then
  t=$(docker ps -q --filter "label=com.docker.swarm.service.name=$service" | head -n 1)
  [ -n "$t" ] || { echo "no running task of $service on this node to collect from" >&2; exit 20; }
  # the binary is `registry` upstream, `docker-registry` in Debian's image
  bin=registry
  docker exec "$t" registry --version >/dev/null 2>&1 || bin=docker-registry
  docker exec "$t" "$bin" garbage-collect "$@" /etc/docker/registry/config.yml >"$log" 2>&1
else
  docker run --rm --name "$name" --network none -v "$data_dir:/var/lib/registry" "$image" \
    garbage-collect "$@" /etc/docker/registry/config.yml >"$log" 2>&1
fi
rc=$?
# a registry nothing was ever pushed to has no repositories/ yet: garbage-collect fails to mark there,
# but there is nothing to collect
if [ "$rc" != 0 ] && grep -q 'Path not found: /docker/registry/v2/repositories' "$log"; then
  printf '0 blobs marked, 0 blobs and 0 manifests eligible for deletion\n' > "$log"
  echo "empty=1"
  rc=0
fi
[ "$storage" = s3 ] || echo "after=$(du -sb "$data_dir" | cut -f1)"
sed -n 's/^\([0-9]*\) blobs marked, \([0-9]*\) blobs and \([0-9]*\) manifests eligible for deletion.*/marked=\1\nblobs=\2\nmanifests=\3/p' "$log"
if [ "$dry_run" = 1 ] && [ "$storage" != s3 ]; then
  total=0
  for d in $(sed -n 's/.*blob eligible for deletion: sha256:\([0-9a-f]\{64\}\).*/\1/p' "$log"); do
    size=$(stat -c %s "$data_dir/docker/registry/v2/blobs/sha256/$(echo "$d" | cut -c1-2)/$d/data" 2>/dev/null || echo 0)
    total=$((total + size))
  done
  echo "eligible_bytes=$total"
fi
echo "rc=$rc"
[ "$rc" = 0 ] || { tail -n 5 "$log" >&2; exit 30; }
