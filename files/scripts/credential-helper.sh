# credential-helper: give the docker user a working `credsStore: pass` (pass + docker-credential-pass,
# a GPG key with an encryption subkey, an initialised password store), reading state first and changing
# only what differs. config.json is only READ here (printed base64): the control machine merges it.
# Variables (set by the command header): source user bin want name_real
#   SOURCE  distro: apt packages pass + golang-docker-credential-helpers
#           release: package pass; the docker-credential-pass binary arrives on stdin (always read
#           in full) and is installed as BIN (0755, temp + rename) when its sha256 differs
#   USER    the docker user; empty = whoever runs this. Run as root for another user, the per-user
#           parts (gpg, pass, the helper, ~/.docker) run as that user through runuser.
#   NAME    Name-Real of a generated key
# Prints, one per line (values after "=" may hold spaces):
#   home=DIR                                  the docker user's home
#   packages=ok | installed NAMES
#   apt_update=1                              when the install needed `apt-get update` first
#   helper=ok | installed                     (release only: BIN)
#   key=ok FPR | created FPR                  a secret key with a usable encryption key
#   keygrip=GRIP                              of that key's encryption subkey (for a preset passphrase)
#   store=ok | initialised                    ~/.password-store/.gpg-id names only usable keys
#   config=BASE64                             ~/.docker/config.json, empty when absent or empty
#   list=RC | skipped                         `timeout 10 docker-credential-pass list` (124 = timed out)
#   list_error=LAST LINE                      when RC is not 0
# Exit status: 0 when the state was read (and converged); 2 bad user, 20-29 packages, 30-39 binary,
# 40-49 key, 50-59 pass init; the reason is the last stderr line.
set -u
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
# Never a pinentry: no tty, no display; our keys have no passphrase (%no-protection).
unset GPG_TTY DISPLAY WAYLAND_DISPLAY GNUPGHOME PASSWORD_STORE_DIR 2>/dev/null
log=$(mktemp) || exit 1
on_exit 'rm -f "$log"'
fail() { code=$1; shift; [ -s "$log" ] && grep -v '^[[:space:]]*$' "$log" | tail -n 3 >&2; echo "$*" >&2; exit "$code"; }

me=$(id -un)
if [ -n "$user" ] && [ "$user" != "$me" ]; then
  [ "$(id -u)" = 0 ] || { echo "running as $me: cannot act for $user (run as root or as $user)" >&2; exit 2; }
  home=$(getent passwd "$user" | cut -d: -f6)
  [ -n "$home" ] || { echo "no such user on this node: $user" >&2; exit 2; }
  as_user() { runuser -u "$user" -- env HOME="$home" "$@"; }
else
  user=$me home=$HOME
  as_user() { "$@"; }
fi
echo "home=$home"
need_root() { [ "$(id -u)" = 0 ] || fail "$1" "$2 needs root on this node (set ssh.sudo: true)"; }


# 1. packages (pass always from the distro; the helper too when source is distro)
need=""
command -v pass >/dev/null 2>&1 || need="pass"
if [ "$source" = distro ] && ! command -v docker-credential-pass >/dev/null 2>&1; then
  need="${need:+$need }golang-docker-credential-helpers"
fi
if [ -z "$need" ]; then
  echo "packages=ok"
else
  need_root 20 "installing $need"
  apt_install() {
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 $need >"$log" 2>&1 </dev/null
  }
  if ! apt_install; then
    # no package lists (removed, as in slim images) or stale ones: update once, then retry
    grep -q -e 'Unable to locate package' -e 'has no installation candidate' -e 'is not available' \
      -e 'Failed to fetch' "$log" || fail 21 "apt-get install $need failed"
    echo "apt_update=1"
    apt-get update -q -o DPkg::Lock::Timeout=120 >"$log" 2>&1 </dev/null || fail 22 "apt-get update failed"
    apt_install || fail 23 "apt-get install $need failed (after apt-get update)"
  fi
  : >"$log"
  echo "packages=installed $need"
fi

# 2. the helper binary (release): stdin is always read in full, so the sender never blocks
helper=docker-credential-pass
if [ "$source" = release ]; then
  helper=$bin
  have=$(sum "$bin"):$(mode "$bin")
  if [ "$have" = "$want:755" ]; then
    cat >/dev/null; echo "helper=ok"
  else
    need_root 30 "installing $bin"
    dir=$(dirname "$bin")
    install -d -m 0755 "$dir" || fail 31 "cannot create $dir"
    verified_write "$bin" 0755 "$want" || { vw=$?; on_exit 'rm -f "$log"'; fail 34 "cannot install $bin (verified_write exit $vw)"; }
    on_exit 'rm -f "$log"'
    echo "helper=installed"
  fi
fi

# 3. a secret key with a usable encryption key, and a store whose .gpg-id names only usable keys
gpgdir=$home/.gnupg store=$home/.password-store
usable() {  # fingerprints of secret keys with a usable encryption (sub)key, optionally matching $1
  as_user gpg --batch --no-tty --with-colons --list-secret-keys -- "$@" 2>/dev/null | awk -F: '
    $1 == "sec" { ok = (index($12, "E") > 0 && $2 != "r" && $2 != "e" && $2 != "d"); fpr_next = 1; next }
    $1 == "fpr" && fpr_next { if (ok) print $10; fpr_next = 0 }'
}
key="" store_ok=""
if [ -d "$gpgdir" ]; then
  if [ -s "$store/.gpg-id" ]; then
    store_ok=1
    for id in $(cat "$store/.gpg-id"); do
      fpr=$(usable "$id" | head -n 1)
      if [ -z "$fpr" ]; then store_ok=""; break; fi
      [ -n "$key" ] || key=$fpr
    done
    [ -n "$store_ok" ] || key=""
  fi
  [ -n "$key" ] || key=$(usable | head -n 1)
fi
if [ -n "$key" ]; then
  echo "key=ok $key"
else
  # ed25519 + cv25519, GnuPG's own default since 2.3 (2.2 makes it when asked): made in ~20 ms, where RSA 3072
  # took ~1.5 s of a node's CPU, and each decryption (the login fact, every docker pull) costs gpg-agent
  # well under 1 ms against ~9 ms (bench/HISTORY.md). A key made before (RSA) is kept: `usable` takes any.
  printf '%s\n' '%no-protection' 'Key-Type: EDDSA' 'Key-Curve: ed25519' 'Key-Usage: sign' 'Subkey-Type: ECDH' \
    'Subkey-Curve: cv25519' 'Subkey-Usage: encrypt' "Name-Real: $name_real" "Name-Email: $user@$(uname -n)" \
    'Expire-Date: 0' '%commit' |
    as_user timeout 120 gpg --batch --no-tty --status-fd 1 --gen-key >"$log" 2>&1 || fail 40 "gpg --gen-key failed"
  key=$(sed -n 's/^\[GNUPG:\] KEY_CREATED [BP] \([0-9A-F]*\).*/\1/p' "$log" | tail -n 1)
  [ -n "$key" ] && [ -n "$(usable "$key")" ] || fail 41 "gpg made no usable encryption key"
  : >"$log"
  echo "key=created $key"
fi
if [ -n "$key" ]; then
  grip=$(as_user gpg --batch --no-tty --with-colons --with-keygrip --list-secret-keys -- "$key" 2>/dev/null | awk -F: '
    $1 == "ssb" || $1 == "sec" { enc = (index($12, "e") > 0 && $2 != "r" && $2 != "e"); next }
    $1 == "grp" && enc { print $10; exit }')
  echo "keygrip=$grip"
fi
if [ -n "$store_ok" ]; then
  echo "store=ok"
else
  as_user pass init "$key" >"$log" 2>&1 </dev/null || fail 50 "pass init $key failed"
  : >"$log"
  echo "store=initialised"
fi

# 4. config.json for the control machine to merge (written back by converge-file)
cfg=$home/.docker/config.json
if [ -f "$cfg" ]; then
  echo "config=$(base64 -w0 <"$cfg")"
else
  echo "config="
  if [ ! -d "$home/.docker" ]; then as_user install -d -m 0700 "$home/.docker"; fi
fi

# 5. the helper answers, without a prompt, within 10 s
out=$(as_user timeout 10 "$helper" list </dev/null 2>&1)
rc=$?
echo "list=$rc"
[ "$rc" = 0 ] || echo "list_error=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)"
exit 0
