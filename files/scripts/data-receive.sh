# data-receive: a tar on stdin unpacked into data_dir (which must be empty or absent), then
# digest=SHA256 of the sorted "sha256  ./path" list of every file (compared with data-send's).
set -u
install -d -m 0755 "$data_dir" || exit 10
[ -z "$(ls -A "$data_dir")" ] || { echo "$data_dir is not empty: refusing to mix registries" >&2; exit 11; }
tar -C "$data_dir" -xf - || exit 12
cd "$data_dir" && echo "digest=$(find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-64)"
