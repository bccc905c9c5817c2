# converge-file: make PATH hold exactly the bytes on stdin, with MODE; report what happened.
# Usage: sh -c "$(cat converge-file.sh)" converge-file PATH MODE SHA256 apply|check
# Prints "state=ok|changed|would-change". The content is compared by sha256 and mode
# before anything is written; a change is written to a temp file beside PATH and
# renamed into place, so PATH is never half-written. The parent directory must exist.
set -u
path=$1 mode=$2 want=$3 action=$4
have=$(sha256sum "$path" 2>/dev/null | cut -d' ' -f1):$(stat -c %a "$path" 2>/dev/null)
if [ "$have" = "$want:$mode" ]; then echo state=ok; exit 0; fi
if [ "$action" = check ]; then echo state=would-change; exit 0; fi
dir=$(dirname "$path")
tmp=$(mktemp "$dir/.$(basename "$path").XXXXXX") || exit 11
trap 'rm -f "$tmp"' EXIT INT TERM HUP
cat > "$tmp" || exit 12
[ "$(sha256sum "$tmp" | cut -d' ' -f1)" = "$want" ] || { echo "content arrived truncated" >&2; exit 13; }
chmod "$mode" "$tmp" && mv -f "$tmp" "$path" || exit 14
trap - EXIT INT TERM HUP
echo state=changed
