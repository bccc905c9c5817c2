# trust-cert: install the trust anchor (on stdin) as certs.d/$endpoint/ca.crt (0644, dir 0755),
# then print the trust fact again (fact_trust: the same reader the facts command uses):
#   trust=..., trust_strays=...
# TLS is then verified from this machine through the node's sshd (remote.tls_check), not here.
set -u
dir="/etc/docker/certs.d/$endpoint"
install -d -m 0755 "$dir" || exit 10  # -m sets the mode of a directory already there too
verified_write "$dir/ca.crt" 0644 "$sha" || exit $?
fc_written=$vw_sum  # checked on disk before the rename: the read-back needs no second sha256sum
fact_trust
