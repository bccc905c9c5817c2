# login: `docker login --password-stdin` (the password is this script's stdin) or `docker logout`
# ($action), then the login and store facts again (fact_login, fact_store: the facts command's
# readers): rc=EXIT, login_user=..., login_sha=..., dconfig=...
set -u
if [ "$action" = login ]; then
  docker login --username "$user" --password-stdin "$endpoint" >/dev/null
else
  docker logout "$endpoint" >/dev/null </dev/null
fi
echo "rc=$?"
fact_login
echo "dconfig=$(base64 -w0 "$HOME/.docker/config.json" 2>/dev/null)"
