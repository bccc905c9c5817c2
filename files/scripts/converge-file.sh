# converge-file: make $path hold exactly the bytes on stdin, with $mode; prints state=ok|changed.
# Compared by sha256 and mode before anything is written; written with verified_write (lib.sh).
# The parent directory must exist.
set -u
if [ "$(sum "$path"):$(mode "$path")" = "$sha:$mode" ]; then cat >/dev/null; echo state=ok; exit 0; fi
verified_write "$path" "$mode" "$sha" || exit $?
echo state=changed
