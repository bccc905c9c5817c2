# restore-data: a tar of the registry's data on stdin, unpacked into a staging directory beside
# data_dir, checked (file count and bytes against the archive's manifest), then renamed into place.
# data_dir must be empty or absent; with force=1 a non-empty one is kept as data_dir.before-restore-TIME
# (never deleted). Nothing is left behind when the stream fails, is truncated or is interrupted.
# Prints: files=N bytes=N [kept=PATH].
set -u
if [ -n "$(ls -A "$data_dir" 2>/dev/null)" ] && [ "$force" != 1 ]; then
  echo "$data_dir is not empty: not mixing registries (--force keeps it aside)" >&2; exit 11
fi
install -d -m 0755 "$(dirname "$data_dir")" || exit 10
stage=$(mktemp -d "$data_dir.restore-XXXXXX") || exit 10
on_exit 'rm -rf "$stage"'
tar -C "$stage" -xf - || { echo "the data stream was refused or cut: nothing restored" >&2; exit 12; }
files=$(find "$stage" -type f | wc -l)
bytes=$(find "$stage" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')
if [ "$files" != "$want_files" ] || [ "$bytes" != "$want_bytes" ]; then
  echo "received $files files / $bytes bytes, the archive holds $want_files / $want_bytes: nothing restored" >&2; exit 13
fi
chmod 0755 "$stage" || exit 14
if [ -n "$(ls -A "$data_dir" 2>/dev/null)" ]; then
  kept="$data_dir.before-restore-$(date +%Y%m%d-%H%M%S)"
  mv "$data_dir" "$kept" || exit 14
  echo "kept=$kept"
elif [ -d "$data_dir" ]; then
  rmdir "$data_dir" || exit 14
fi
mv "$stage" "$data_dir" || exit 14
trap - EXIT INT TERM HUP
echo "files=$files"
echo "bytes=$bytes"
