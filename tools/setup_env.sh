#!/usr/bin/env bash
# Create (or reuse) .venv and install expo_nb with everything it needs, from the package registries only.
# torch is installed first and pinned, so that no multi-GB CUDA build is pulled by a dependency.
# llama-cpp-python compiles from source on a fresh machine (~12 min on 2 cores); pip's wheel cache
# (~/.cache/pip) is kept, so later installs on the same machine take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export CMAKE_ARGS=${CMAKE_ARGS:--DLLAVA_BUILD=OFF}
stamp=.venv/.expo_nb_installed
want=$( (cat settings.ini setup.py; echo "${EXTRAS:-dev,tracking}") | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[${EXTRAS:-dev,tracking}]"
  echo "$want" > "$stamp"
fi
