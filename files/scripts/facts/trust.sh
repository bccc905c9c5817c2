# fact trust: trust=SHA256:FILEMODE:DIRMODE of certs.d/$endpoint/ca.crt; trust_previous=SHA256:FILEMODE of
# ca-previous.crt (the previous CA, trusted beside ca.crt during rotate-ca; empty: none); trust_strays=other files.
fact_trust() {
  fc_certs="/etc/docker/certs.d/$endpoint"
  echo "trust=$(sum "$fc_certs/ca.crt"):$(mode "$fc_certs/ca.crt"):$(mode "$fc_certs")"
  echo "trust_previous=$([ -e "$fc_certs/ca-previous.crt" ] && echo "$(sum "$fc_certs/ca-previous.crt"):$(mode "$fc_certs/ca-previous.crt")")"
  echo "trust_strays=$(ls -A "$fc_certs" 2>/dev/null | grep -v -x -F -e ca.crt -e ca-previous.crt | tr '\n' ' ')"
}
