# lib.sh: shell functions every remote script may use (prepended to each one by commands.script).
sum() { sha256sum 2>/dev/null <"$1" | cut -c1-64; }
mode() { stat -c %a "$1" 2>/dev/null; }
# verified_write PATH MODE SHA256: stdin -> a temp file beside PATH, checked against SHA256, chmod
# MODE, renamed over PATH; PATH is never half-written. Returns 11-14 (cannot create, cannot write,
# truncated, cannot rename) and leaves no temp file behind, also when interrupted.
verified_write() {
  vw_tmp=$(mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX") || return 11
  trap 'rm -f "$vw_tmp"' EXIT INT TERM HUP
  cat >"$vw_tmp" || { rm -f "$vw_tmp"; return 12; }
  if [ "$(sum "$vw_tmp")" != "$3" ]; then echo "$1: content arrived truncated" >&2; rm -f "$vw_tmp"; return 13; fi
  chmod "$2" "$vw_tmp" && mv -f "$vw_tmp" "$1" || { rm -f "$vw_tmp"; return 14; }
  trap - EXIT INT TERM HUP
}
