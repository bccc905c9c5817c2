# lib.sh: shell functions every remote script may use (prepended to each one by commands.script).
# sum_into VAR FILE: VAR=FILE's sha256 (empty when unreadable), set in this shell; sum FILE prints it;
# mode PATH: its octal mode (empty when absent). Few processes: on a first trust-cert the remote scripts'
# forks are most of the second command's cost (bench/HISTORY.md), so a path that is not there costs none,
# and a hot path calls sum_into (one process) rather than $(sum ...), whose own $() is a second fork.
sum_into() {
  if [ -r "$2" ]; then set -- "$1" "$(sha256sum 2>/dev/null <"$2")"; else set -- "$1" ""; fi
  eval "$1=\${2%% *}"
}
sum() { sum_into sm_sum "$1"; echo "$sm_sum"; }
mode() { [ -e "$1" ] || [ -L "$1" ] || return 0; stat -c %a "$1" 2>/dev/null; }
# on_exit CMD: run CMD when the script ends, also when interrupted; a signal ends the script (a trap that
# only cleaned up would let it go on: dash resumes after a handler), with 128+N.
on_exit() {
  trap "$1" EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
# verified_write PATH MODE SHA256: stdin -> a temp file beside PATH, checked against SHA256, given
# MODE, renamed over PATH; PATH is never half-written. Returns 11-14 (cannot create, cannot write,
# truncated, cannot rename) and leaves no temp file behind, also when interrupted.
# Few processes (a first trust-cert's cost on the node is its processes): a MODE without execute bits
# is set as the shell creates the temp file .NAME.PID (umask 7-d per digit; noclobber: O_EXCL), so
# the write is cat, sha256sum and mv; with execute bits, or that name taken, mktemp and chmod as well.
verified_write() {
  case $1 in */*) vw_dir=${1%/*}/ ;; *) vw_dir= ;; esac  # dirname/basename without two forks
  vw_tmp="$vw_dir.${1##*/}.$$" vw_u= vw_rc=11
  vw_m=000$2; vw_m=${vw_m#"${vw_m%???}"}  # the last three digits
  case $2:$vw_m in
    *[!0]???:*|*:*[!0246]*) ;;  # set-id/sticky or execute bits: chmod
    *) vw_d=${vw_m#?}; vw_u=$((7 - ${vw_m%??}))$((7 - ${vw_d%?}))$((7 - ${vw_m#??})) ;;
  esac
  on_exit 'rm -f "$vw_tmp"'
  if [ -n "$vw_u" ] && ! [ -e "$vw_tmp" ] && ! [ -L "$vw_tmp" ]; then
    (umask "$vw_u"; set -C; true 2>/dev/null >"$vw_tmp" || exit 11; exec cat >>"$vw_tmp"); vw_rc=$?
  fi
  if [ "$vw_rc" = 11 ]; then
    vw_u= vw_tmp=$(mktemp "$vw_dir.${1##*/}.XXXXXX") || { trap - EXIT INT TERM HUP; return 11; }
    cat >"$vw_tmp"; vw_rc=$?
  fi
  [ "$vw_rc" = 0 ] || { rm -f "$vw_tmp"; return 12; }
  sum_into vw_sum "$vw_tmp"
  if [ "$vw_sum" != "$3" ]; then echo "$1: content arrived truncated" >&2; rm -f "$vw_tmp"; return 13; fi
  { [ -n "$vw_u" ] || chmod "$2" "$vw_tmp"; } && mv -f "$vw_tmp" "$1" || { rm -f "$vw_tmp"; return 14; }
  trap - EXIT INT TERM HUP
}
