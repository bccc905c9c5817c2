# fact trust: trust=SHA256:FILEMODE:DIRMODE of certs.d/$endpoint/ca.crt; trust_previous=SHA256:FILEMODE of
# ca-previous.crt (the previous CA, trusted beside ca.crt during rotate-ca; empty: none); trust_strays=other files.
fact_trust() {
  fc_certs="/etc/docker/certs.d/$endpoint"
  echo "trust=$(sum "$fc_certs/ca.crt"):$(mode "$fc_certs/ca.crt"):$(mode "$fc_certs")"
  echo "trust_previous=$([ -e "$fc_certs/ca-previous.crt" ] && echo "$(sum "$fc_certs/ca-previous.crt"):$(mode "$fc_certs/ca-previous.crt")")"
  fc_strays=
  for fc_f in "$fc_certs"/* "$fc_certs"/.*; do  # the shell's globs: no ls | grep | tr per host
    case ${fc_f##*/} in ca.crt | ca-previous.crt | . | ..) continue ;; esac
    [ -e "$fc_f" ] || [ -L "$fc_f" ] || continue  # an unmatched pattern stays as it is
    fc_strays="$fc_strays${fc_f##*/} "
  done
  echo "trust_strays=$fc_strays"
}
