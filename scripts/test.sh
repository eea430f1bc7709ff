#!/usr/bin/env bash
# Installs keras-lgvq with its test extras into a fresh virtual environment,
# fetches the offline assets and runs the test suite on TensorFlow, JAX and
# torch. Usage: bash scripts/test.sh [extra pytest args]
# Env: VENV (default .venv-test), BACKENDS (default "tensorflow jax torch"),
#      PYTEST_MARKERS (default "not slow"; set to "" to run everything),
#      PYTEST_WORKERS (default 2: pytest-xdist processes, one test file per
#      worker at a time so module fixtures are built once; 0 = in-process),
#      LGVQ_HOST_ONLY_BACKEND (default: the first of BACKENDS; the backend
#      that runs the `host_only` test files), LGVQ_TEST_BACKENDS (default
#      BACKENDS; spreads the `end_to_end` recipe runs over them).
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

# Files marked `host_only` (no Keras backend op runs in them) run under the
# first backend only (tests/conftest.py).
read -r first_backend _ <<< "$BACKENDS"
export LGVQ_HOST_ONLY_BACKEND="${LGVQ_HOST_ONLY_BACKEND:-$first_backend}"
# Tests marked `end_to_end(backend)` (whole recipe runs) run under their
# named backend only when it is one of this run's, else under the first
# (tests/conftest.py); the model code they drive is tested on every backend.
export LGVQ_TEST_BACKENDS="${LGVQ_TEST_BACKENDS:-$BACKENDS}"
# JAX's persistent compilation cache, fresh for this run and shared by the
# workers: many test files compile the same tiny models' steps, and the
# per-file `jax.clear_caches()` (tests/conftest.py) would otherwise make
# each file compile them again (~1.2x faster on tests/models/vqgan). Every
# compilation is kept, however short: a tiny VQGAN step's test compiled 214
# programs, 213 of them initialisers and other eager ops of 30-150 ms each
# (7 s together, more than the 5.8 s step); keeping them took four model
# test files from 173 to 157 s.
if [ -z "${JAX_COMPILATION_CACHE_DIR:-}" ]; then
  JAX_COMPILATION_CACHE_DIR="$(mktemp -d)"
  trap 'rm -rf "$JAX_COMPILATION_CACHE_DIR"' EXIT
fi
export JAX_COMPILATION_CACHE_DIR
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0}"
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="${JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES:-0}"
# XLA (JAX, and TensorFlow's jit_compile) compiles the tests' tiny steps
# with LLVM's optimisations off: compiling dominates there, so JAX test
# files ran ~25-30 % faster (tests/layers 202 -> 151 s; three VQGAN /
# loss files 133 -> 94 s), with the same results. Only for the tests: the
# package and its benchmarks leave XLA's defaults alone.
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0}"
status=0
for backend in $BACKENDS; do
  echo "=== KERAS_BACKEND=$backend ==="
  start=$(date +%s)
  KERAS_BACKEND="$backend" python -m pytest -q -m "$MARKERS" \
    -n "$WORKERS" --dist loadfile --durations=25 tests "$@" || status=1
  echo "=== $backend took $(( $(date +%s) - start )) s ==="
done
exit $status
