# data-send: data_dir as a tar on stdout; then, on stderr, digest=SHA256 of the sorted list of
# "sha256  ./path" of every file (the same list data-receive computes on the other side).
set -u
cd "$data_dir" || exit 10
tar -cf - . || exit 11
echo "digest=$(find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-64)" >&2
