# trust-cert: install the trust anchor (on stdin) as certs.d/$endpoint/ca.crt (0644, dir 0755),
# then print the trust fact again and verify the registry with curl against it:
#   trust=..., trust_strays=...   (fact_trust: the same reader the facts command uses)
#   verify=RC CODE | verify=skipped  (curl's exit code and HTTP status of https://$endpoint/v2/)
set -u
dir="/etc/docker/certs.d/$endpoint"
install -d -m 0755 "$dir" || exit 10  # -m sets the mode of a directory already there too
verified_write "$dir/ca.crt" 0644 "$sha" || exit $?
fact_trust
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
