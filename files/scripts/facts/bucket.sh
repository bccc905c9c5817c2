# fact bucket (storage s3, on the first registry node): does the bucket answer to our keys, as this node
# reaches the S3 endpoint? bucket=HTTP status of a SigV4-signed HEAD of ENDPOINT/BUCKET (200: there,
# 404: missing, 403: keys refused, 000: no answer, nocurl: no curl). The keys come on this command's
# stdin (two lines) and reach curl as a config on its stdin: never in an argv or a file.
fact_bucket() {
  IFS= read -r fb_ak || fb_ak=""
  IFS= read -r fb_sk || fb_sk=""
  echo "bucket=$(s3_curl HEAD "$fb_ak" "$fb_sk" "$s3_endpoint/$s3_bucket" -o /dev/null)"
}
# s3_curl METHOD ACCESS_KEY SECRET_KEY URL [CURL ARGS]: a SigV4-signed request; prints the HTTP status
# (curl's -w) after whatever the extra args write to stdout. $sc_sha: the payload's sha256 (S3 checks it
# against what arrives), default that of an empty body.
s3_curl() {
  command -v curl >/dev/null 2>&1 || { echo nocurl; return 0; }
  sc_method=$1 sc_ak=$2 sc_sk=$3 sc_url=$4
  shift 4
  if [ "$sc_method" = HEAD ]; then set -- -I "$@"; else set -- -X "$sc_method" "$@"; fi
  # printf is a shell builtin: the keys never appear in a process's argv
  printf 'user = "%s:%s"\naws-sigv4 = "aws:amz:%s:s3"\nheader = "x-amz-content-sha256: %s"\n' \
    "$sc_ak" "$sc_sk" "$s3_region" "${sc_sha:-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855}" |
    curl -s -K - --max-time 20 "$@" -w '%{http_code}' "$sc_url" 2>/dev/null
  return 0
}
