#!/usr/bin/env bash
# Wheels that the lent GPU machine lacks for `tools/gpu_check.py`'s smoke step: Snakemake and its
# dependencies (that machine has Python 3.12 with torch, numpy, pandas, matplotlib, jinja2, but no
# Snakemake, and cannot reach PyPI). Pure-Python wheels are built here; the compiled ones are
# fetched for CPython 3.12 at the versions the pure ones require. Writes .whl/ (git-ignored
# through .git/info/exclude), about 30 MB; carry it (`carry: [".whl"]`) and install it there:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/pip}"
version=$(.venv/bin/python -c 'import snakemake; print(snakemake.__version__)')
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
"$PIP" wheel -q -w .whl "snakemake==$version" jsonschema
compiled=$(ls .whl | grep -- '-cp3' | awk -F- '{print $1 "==" $2}')
rm -f .whl/*-cp3*.whl
platforms=""
for p in manylinux_2_28 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
  platforms="$platforms --platform ${p}_x86_64"
done
# shellcheck disable=SC2086
"$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  $platforms -d .whl $compiled
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1), in .whl/"
