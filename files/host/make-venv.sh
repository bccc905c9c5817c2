#!/usr/bin/env bash
# make-venv.sh PYTHON VENV REQUIREMENTS: VENV made by PYTHON, REQUIREMENTS installed in it. Nothing is done
# when it already is (VENV/.stamp records the interpreter and the requirements' sha256); it is made again
# when either changed (a venv made by another python3, e.g. a pyenv shim found first on PATH).
set -euo pipefail
py=$1 venv=$2 req=$3
interp=$("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')
want="$interp $(sha256sum < "$req" | cut -d' ' -f1)"
if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "venv: $venv from $interp"
"$py" -m venv --clear "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
printf '%s\n' "$want" > "$venv/.stamp"
