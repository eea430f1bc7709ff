#!/usr/bin/env bash
# Installs keras-lgvq with its test extras into a fresh virtual environment,
# fetches the offline assets and runs the test suite on TensorFlow, JAX and
# torch. Usage: bash scripts/test.sh [extra pytest args]
# Env: VENV (default .venv-test), BACKENDS (default "tensorflow jax torch"),
#      PYTEST_MARKERS (default "not slow"; set to "" to run everything).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-test}"
BACKENDS="${BACKENDS:-tensorflow jax torch}"
MARKERS="${PYTEST_MARKERS-not slow}"

python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
# The CPU build of torch: a plain `torch` requirement would pull a CUDA build.
python -m pip install --quiet "torch==2.13.0" || python -m pip install --quiet \
  --index-url https://download.pytorch.org/whl/cpu torch
python -m pip install --quiet -e ".[tests,jax,torch]"
python -m keras_lgvq.fetch_assets

status=0
for backend in $BACKENDS; do
  echo "=== KERAS_BACKEND=$backend ==="
  start=$(date +%s)
  KERAS_BACKEND="$backend" python -m pytest -q -m "$MARKERS" tests "$@" \
    || status=1
  echo "=== $backend took $(( $(date +%s) - start )) s ==="
done
exit $status
