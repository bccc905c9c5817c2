# s3-upload: copy registry.data_dir (the filesystem driver's tree) into the bucket under the same paths
# ($s3_prefix/docker/registry/v2/...), one file at a time, streamed by curl from the file (never whole in
# memory). Resumable: an object already there with the same size is skipped (it was verified when it
# went up). Verified: each PUT carries the file's sha256 as x-amz-content-sha256, which S3 checks against
# the bytes it received; a blob's sha256 must also equal the digest its path names. In-progress uploads
# (_uploads) are not copied. The keys come on stdin (two lines). Prints files=N uploaded=N skipped=N
# bytes=N (uploaded bytes), then ok=1; a failing file stops the copy with its path and HTTP status.
IFS= read -r u_ak || u_ak=""
IFS= read -r u_sk || u_sk=""
root="$data_dir/docker/registry/v2"
[ -d "$root" ] || { echo "no registry data in $data_dir (no docker/registry/v2): nothing to migrate" >&2; exit 3; }
list=$(mktemp) || exit 1
on_exit 'rm -f "$list"'
(cd "$data_dir" && find docker/registry/v2 -type f ! -path '*/_uploads/*' | LC_ALL=C sort) >"$list"
files=0 uploaded=0 skipped=0 bytes=0
while IFS= read -r rel; do
  files=$((files + 1))
  f="$data_dir/$rel"
  size=$(stat -c %s "$f") || exit 4
  url="$s3_endpoint/$s3_bucket$s3_prefix/$rel"
  sc_sha=""
  have=$(s3_curl HEAD "$u_ak" "$u_sk" "$url" -o /dev/null -D - | tr -d '\r' |
         sed -n 's/^[Cc]ontent-[Ll]ength: *\([0-9]*\).*/\1/p; s/^\([0-9][0-9][0-9]\)$/status=\1/p')
  case "$have" in
    *status=200*) [ "$(printf '%s\n' "$have" | head -n 1)" = "$size" ] && { skipped=$((skipped + 1)); continue; } ;;
  esac
  sc_sha=$(sha256sum <"$f" | cut -c1-64)
  case "$rel" in
    */blobs/sha256/*/data)
      want=$(basename "$(dirname "$rel")")
      [ "$want" = "$sc_sha" ] || { echo "$rel: content sha256 $sc_sha is not its digest $want: corrupt blob, not copied" >&2; exit 5; } ;;
  esac
  code=$(s3_curl PUT "$u_ak" "$u_sk" "$url" -T "$f" -o /dev/null)
  [ "$code" = 200 ] || { echo "$rel: upload answered HTTP $code" >&2; exit 6; }
  uploaded=$((uploaded + 1)) bytes=$((bytes + size))
done <"$list"
echo "files=$files"
echo "uploaded=$uploaded"
echo "skipped=$skipped"
echo "bytes=$bytes"
echo "ok=1"
