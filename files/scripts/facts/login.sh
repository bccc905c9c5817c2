# fact login: the credential docker gets for $endpoint from docker-credential-pass, read where the helper
# keeps it in pass's store ($cred_dir: docker-credential-helpers/BASE64URL(endpoint), one file USERNAME.gpg;
# the helper takes the first name) and decrypted by gpg as `pass show` does. Not through the helper: its
# `get` starts pass, a bash script, around the same gpg, and cost 30 of a converged node's 72 ms of facts
# (bench/HISTORY.md). Prints login_user=USERNAME and login_sha=SHA256 of the secret, both empty unless gpg
# decrypts it; the secret itself goes from gpg to sha256sum only.
fact_login() {
  command -v docker-credential-pass >/dev/null 2>&1 || return 0
  for fl_file in "${PASSWORD_STORE_DIR:-$HOME/.password-store}/$cred_dir"/*; do break; done
  if [ -f "$fl_file" ]; then  # gpg's status, then the hash (fd 3 and the pipe both end in $fl_out)
    fl_out=$( { { timeout 10 gpg --quiet --batch --yes -d "$fl_file" 2>/dev/null; echo "rc=$?" >&3; } \
      | sha256sum; } 3>&1)
    set -- $fl_out
  else
    set --
  fi
  if [ "${1:-}" = rc=0 ] && [ $# = 3 ]; then
    fl_file=${fl_file##*/}
    echo "login_user=${fl_file%.gpg}"
    echo "login_sha=$2"
  else
    echo "login_user="
    echo "login_sha="
  fi
}
