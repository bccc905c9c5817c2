# verify-tls: TLS to https://$endpoint/v2/ with curl, trusting what docker trusts in certs.d/$endpoint;
# only where the node's sshd refuses TCP forwarding (elsewhere remote.tls_check runs no command here):
#   verify=RC CODE | verify=skipped  (curl's exit code and HTTP status; skipped: no curl)
set -u
dir="/etc/docker/certs.d/$endpoint"
if command -v curl >/dev/null 2>&1; then
  cas="$dir/ca.crt"  # during rotate-ca docker also trusts ca-previous.crt: verify as docker does
  if [ -e "$dir/ca-previous.crt" ]; then cas=$(mktemp) && cat "$dir/ca.crt" "$dir/ca-previous.crt" > "$cas"; fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 --max-time 5 --cacert "$cas" \
    "https://$endpoint/v2/")
  echo "verify=$? $code"
  [ "$cas" = "$dir/ca.crt" ] || rm -f "$cas"
else
  echo "verify=skipped"
fi
