# bucket: create the S3 bucket storage.s3.bucket from this registry node (the keys on stdin, two lines),
# then print the bucket fact again (bucket=200 once it is there); the S3 error code on failure.
IFS= read -r b_ak || b_ak=""
IFS= read -r b_sk || b_sk=""
b_body=$(mktemp) || exit 1
on_exit 'rm -f "$b_body"'
b_code=$(s3_curl PUT "$b_ak" "$b_sk" "$s3_endpoint/$s3_bucket" -o "$b_body")
case "$b_code" in
  200|409) ;;  # made, or already there (BucketAlreadyOwnedByYou)
  *) echo "cannot create bucket $s3_bucket at $s3_endpoint: HTTP $b_code $(sed -n 's/.*<Code>\([^<]*\)<.*/\1/p' "$b_body")" >&2
     exit 1 ;;
esac
echo "bucket=$(s3_curl HEAD "$b_ak" "$b_sk" "$s3_endpoint/$s3_bucket" -o /dev/null)"
