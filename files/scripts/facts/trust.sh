# fact trust: trust=SHA256:FILEMODE:DIRMODE of certs.d/$endpoint/ca.crt; trust_previous=SHA256:FILEMODE of
# ca-previous.crt (the previous CA, trusted beside ca.crt during rotate-ca; empty: none); trust_strays=other files.
# trust-cert's fan-out runs this on every node, twice on a first run (facts, then the read-back after the
# write): a node without certs.d/$endpoint costs no process, one with it costs one stat (both modes) and
# one sha256sum. With $fc_written set (trust-cert.sh, just after verified_write), that is ca.crt's sha256:
# verified_write read it from disk in the temp file it then renamed to ca.crt (the same inode), so the
# read-back costs the stat alone.
fact_trust() {
  fc_certs="/etc/docker/certs.d/$endpoint"
  fc_sum= fc_file= fc_dir= fc_previous= fc_strays=
  if [ -d "$fc_certs" ]; then
    set -- $(stat -c %a -- "$fc_certs" "$fc_certs/ca.crt" 2>/dev/null)  # the directory's mode, then the file's
    fc_dir=${1-} fc_file=${2-}
    if [ -n "${fc_written-}" ]; then fc_sum=$fc_written; else sum_into fc_sum "$fc_certs/ca.crt"; fi
    if [ -e "$fc_certs/ca-previous.crt" ]; then
      fc_previous="$(sum "$fc_certs/ca-previous.crt"):$(mode "$fc_certs/ca-previous.crt")"
    fi
    for fc_f in "$fc_certs"/* "$fc_certs"/.*; do  # the shell's globs: no ls | grep | tr per host
      case ${fc_f##*/} in ca.crt | ca-previous.crt | . | ..) continue ;; esac
      [ -e "$fc_f" ] || [ -L "$fc_f" ] || continue  # an unmatched pattern stays as it is
      fc_strays="$fc_strays${fc_f##*/} "
    done
  fi
  echo "trust=$fc_sum:$fc_file:$fc_dir"
  echo "trust_previous=$fc_previous"
  echo "trust_strays=$fc_strays"
}
