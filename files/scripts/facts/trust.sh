# fact trust: trust=SHA256:FILEMODE:DIRMODE of certs.d/$endpoint/ca.crt; trust_strays=other files there.
fact_trust() {
  fc_certs="/etc/docker/certs.d/$endpoint"
  echo "trust=$(sum "$fc_certs/ca.crt"):$(mode "$fc_certs/ca.crt"):$(mode "$fc_certs")"
  echo "trust_strays=$(ls -A "$fc_certs" 2>/dev/null | grep -v -x -F ca.crt | tr '\n' ' ')"
}
