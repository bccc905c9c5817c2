# fact login: what the credential store holds for $endpoint, without sending the password back:
# login_user=USERNAME and login_sha=SHA256 of the helper's answer (its JSON, newlines removed).
fact_login() {
  if command -v docker-credential-pass >/dev/null 2>&1; then
    fl_entry=$(printf '%s' "$endpoint" | timeout 10 docker-credential-pass get 2>/dev/null) || fl_entry=""
    fl_entry=$(printf '%s' "$fl_entry" | tr -d '\n')
    echo "login_user=$(printf '%s' "$fl_entry" | sed -n 's/.*"Username":"\([^"]*\)".*/\1/p')"
    echo "login_sha=$([ -n "$fl_entry" ] && printf '%s' "$fl_entry" | sha256sum | cut -c1-64)"
  fi
}
