# login: `docker login --password-stdin` (the password is this script's stdin), or just read state.
# Usage: sh -c "$(cat login.sh)" login ENDPOINT USER facts|login|logout
# Prints: helper=0|1 (docker-credential-pass present), stored=<base64 of the credential store's
# entry for ENDPOINT>, config=<base64 of ~/.docker/config.json>, and for login/logout rc=<exit>.
set -u
endpoint=$1 user=$2 action=$3
if [ "$action" = login ]; then
  docker login --username "$user" --password-stdin "$endpoint" >/dev/null
  echo "rc=$?"
elif [ "$action" = logout ]; then
  docker logout "$endpoint" >/dev/null
  echo "rc=$?"
fi
if command -v docker-credential-pass >/dev/null 2>&1; then
  echo helper=1
  echo "stored=$(printf '%s' "$endpoint" | timeout 10 docker-credential-pass get 2>/dev/null | base64 -w0)"
else
  echo helper=0
fi
echo "config=$(base64 -w0 "$HOME/.docker/config.json" 2>/dev/null)"
