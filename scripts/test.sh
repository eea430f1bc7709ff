#!/usr/bin/env bash
# Installs keras-lgvq with its test extras into a fresh virtual environment,
# fetches the offline assets and runs the test suite on TensorFlow, JAX and
# torch. Usage: bash scripts/test.sh [extra pytest args]
# Env: VENV (default .venv-test), BACKENDS (default "tensorflow jax torch"),
#      PYTEST_MARKERS (default "not slow"; set to "" to run everything),
#      PYTEST_WORKERS (default 2: pytest-xdist processes, one test file per
#      worker at a time so module fixtures are built once; 0 = in-process).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-test}"
BACKENDS="${BACKENDS:-tensorflow jax torch}"
MARKERS="${PYTEST_MARKERS-not slow}"
WORKERS="${PYTEST_WORKERS:-2}"

python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
# The CPU build of torch, from PyTorch's CPU index first: on PyPI
# `torch==2.13.0` is the CUDA build (several GB of nvidia-* wheels). A local
# wheel named by pip's find-links is still taken; only when that index
# cannot be reached does it fall back to the configured indexes.
python -m pip install --quiet --timeout 30 --retries 1 \
  --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" || {
  echo "PyTorch's CPU index was not reachable: torch from the configured" \
    "indexes (on plain PyPI that is the CUDA build)." >&2
  python -m pip install --quiet "torch==2.13.0"
}
python -m pip install --quiet -e ".[tests,jax,torch]"
python -m keras_lgvq.fetch_assets

# Debian packages of the caption / VQA metrics, only when missing: a Java
# runtime (METEOR and the PTB tokenizer jars) and WordNet 3.0 (WUPS).
apt_missing=()
command -v java >/dev/null 2>&1 || apt_missing+=(default-jre-headless)
[ -f /usr/share/wordnet/data.noun ] || apt_missing+=(wordnet-base)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" \
      >/dev/null; } || echo "apt-get install ${apt_missing[*]} failed." >&2
  else
    echo "Not root: install ${apt_missing[*]} with apt-get for the" \
      "METEOR / WUPS tests." >&2
  fi
fi

status=0
for backend in $BACKENDS; do
  echo "=== KERAS_BACKEND=$backend ==="
  start=$(date +%s)
  KERAS_BACKEND="$backend" python -m pytest -q -m "$MARKERS" \
    -n "$WORKERS" --dist loadfile tests "$@" || status=1
  echo "=== $backend took $(( $(date +%s) - start )) s ==="
done
exit $status
