# trust-cert: install the trust anchor (on stdin) as certs.d/$endpoint/ca.crt (0644, dir 0755),
# then print the trust fact again and verify the registry with curl against it:
#   trust=..., trust_strays=...   (fact_trust: the same reader the facts command uses)
#   verify=RC CODE | verify=skipped  (curl's exit code and HTTP status of https://$endpoint/v2/)
set -u
dir="/etc/docker/certs.d/$endpoint"
install -d -m 0755 "$dir" && chmod 0755 "$dir" || exit 10
verified_write "$dir/ca.crt" 0644 "$sha" || exit $?
fact_trust
if command -v curl >/dev/null 2>&1; then
  url="https://$endpoint/v2/"
  case $endpoint in *:*:*) url="https://[${endpoint%:*}]:${endpoint##*:}/v2/" ;; esac
  code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 --max-time 5 --cacert "$dir/ca.crt" "$url")
  echo "verify=$? $code"
else
  echo "verify=skipped"
fi
