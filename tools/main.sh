#!/usr/bin/env bash
# The main job: install, then run the quick EXPO preset on the embedded offline LLM and embedder.
# Extra arguments go to `expo run`, e.g. `bash tools/main.sh --iterations 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
. .venv/bin/activate
exec expo run linreg-quick --out runs/linreg-quick "$@"
