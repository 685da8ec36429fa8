#!/usr/bin/env bash
# Creates (once) the Python virtualenv of the client-compatibility tests and prints the path of
# its python on stdout; progress goes to stderr. Packages are the pins of python-requirements.txt;
# pip runs only when those pins changed since the last install.
# The venv lives in $ACCTMON_PYTHON_VENV, by default target/python-venv of the repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/scripts/python-requirements.txt"
venv="${ACCTMON_PYTHON_VENV:-$root/target/python-venv}"
stamp="$venv/.requirements.sha256"

if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 not found: install Python 3.8 or newer (with the venv module)" >&2
  exit 1
fi
python="$venv/bin/python"
hash="$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$requirements")"

if [ -x "$python" ] && "$python" -c '' >/dev/null 2>&1 \
  && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
  echo "$python"
  exit 0
fi

if ! [ -x "$python" ] || ! "$python" -c '' >/dev/null 2>&1; then
  echo "creating Python virtualenv in $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
fi
echo "installing the pins of $requirements" >&2
rm -f "$stamp"
"$python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$hash" >"$stamp"
echo "$python"
