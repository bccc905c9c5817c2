# trust-cert: install the registry's trust anchor (on stdin) as DIR/ca.crt, then verify it.
# Usage: sh -c "$(cat trust-cert.sh)" trust-cert DIR ENDPOINT SHA256 apply|check
# Prints, one per line:
#   state=ok|changed|would-change   (content, file mode 0644 and directory mode 0755 compared first)
#   strays=NAMES                     (anything but ca.crt in DIR: a .key or .cert there breaks docker)
#   verify=RC CODE | verify=skipped  (curl's exit code and HTTP status of https://ENDPOINT/v2/
#                                     verified against DIR/ca.crt; RC 0 means the handshake verified)
set -u
dir=$1 endpoint=$2 want=$3 action=$4
target="$dir/ca.crt"
have=$(sha256sum "$target" 2>/dev/null | cut -d' ' -f1):$(stat -c %a "$target" 2>/dev/null):$(stat -c %a "$dir" 2>/dev/null)
if [ "$have" = "$want:644:755" ]; then
  state=ok
elif [ "$action" = check ]; then
  state=would-change
else
  install -d -m 0755 "$dir" && chmod 0755 "$dir" || exit 10
  tmp=$(mktemp "$dir/.ca.crt.XXXXXX") || exit 11
  trap 'rm -f "$tmp"' EXIT INT TERM HUP
  cat > "$tmp" || exit 12
  [ "$(sha256sum "$tmp" | cut -d' ' -f1)" = "$want" ] || { echo "certificate arrived truncated" >&2; exit 13; }
  chmod 0644 "$tmp" && mv -f "$tmp" "$target" || exit 14
  trap - EXIT INT TERM HUP
  state=changed
fi
echo "state=$state"
echo "strays=$(ls -A "$dir" 2>/dev/null | grep -v -x -F ca.crt | tr '\n' ' ')"
if [ "$state" != would-change ] && command -v curl >/dev/null 2>&1; then
  code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 --max-time 5 --cacert "$target" "https://$endpoint/v2/")
  echo "verify=$? $code"
else
  echo "verify=skipped"
fi
