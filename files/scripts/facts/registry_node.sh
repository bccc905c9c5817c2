# fact registry_node: the image's ID, the modes of data_dir and auth_dir, SHA256:MODE of htpasswd
# and of the compose file (a copy kept for the operator; what runs is read from the swarm).
fact_registry_node() {
  echo "image=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)"
  echo "data_dir=$(mode "$data_dir")"
  echo "auth_dir=$(mode "$auth_dir")"
  echo "htpasswd=$(sum "$auth_dir/htpasswd"):$(mode "$auth_dir/htpasswd")"
  echo "compose=$(sum "$compose"):$(mode "$compose")"
}
