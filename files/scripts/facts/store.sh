# fact store: the credential store of the user running docker: pass=0|1, helper=SHA256 of
# docker-credential-pass first on PATH (empty: absent) and helper_path=ITS PATH, gpg_id=1 when the store is initialised, list=RC of
# `docker-credential-pass list`, dconfig=BASE64 of ~/.docker/config.json.
fact_store() {
  command -v pass >/dev/null 2>&1 && echo pass=1 || echo pass=0
  fs_helper=$(command -v docker-credential-pass 2>/dev/null)
  echo "helper=$([ -n "$fs_helper" ] && sum "$fs_helper")"
  echo "helper_path=$fs_helper"
  echo "gpg_id=$([ -s "$HOME/.password-store/.gpg-id" ] && echo 1)"
  echo "dconfig=$(base64 -w0 "$HOME/.docker/config.json" 2>/dev/null)"
  if [ -n "$fs_helper" ]; then
    timeout 10 docker-credential-pass list >/dev/null 2>&1 </dev/null
    echo "list=$?"
  fi
}
