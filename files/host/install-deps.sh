#!/usr/bin/env bash
# Install the Debian packages the project, its lab and its tests need (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail
PKGS=(docker.io docker-registry openssh-server openssh-client debootstrap gnupg pass
      golang-docker-credential-helpers apache2-utils openssl curl iproute2 util-linux python3-venv make sudo skopeo
      age)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${missing[*]}; run as root (sudo make deps)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
