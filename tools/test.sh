#!/usr/bin/env bash
# The whole test suite: install, check that notebooks and library are in sync and clean, lint (ruff) and the
# readability gates, then pytest
# (unit tests, every notebook as one test in its own subprocess, the HTTP boundary, and the CI-kept
# end-to-end run on the embedded local LLM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
. .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset OPENAI_API_KEY || true
export OPENAI_BASE_URL=http://127.0.0.1:9/v1   # a closed port: accidental use of the default endpoint fails fast

echo "== notebooks clean (nbdev_clean) and library in sync (nbdev_export)"
nbdev_clean
nbdev_export
if [ -n "$(git status --porcelain -- expo_nb nbs)" ]; then
  git status --porcelain -- expo_nb nbs
  echo "FAILED: nbdev_clean/nbdev_export changed files: run them and commit the result" >&2
  exit 1
fi

echo "== ruff: pyflakes, pycodestyle, import order, 120 columns (it reads the notebooks too)"
ruff check expo_nb nbs tests tools benchmarks

echo "== readability gates of the literate source (tools/code_metrics.py)"
python tools/code_metrics.py

echo "== pytest"
set +e
python -m pytest -q -m "not slow or ci_slow" "$@"
rc=$?
set -e
[ $rc -eq 5 ] && { echo "FAILED: pytest collected no tests" >&2; exit 1; }
exit $rc
