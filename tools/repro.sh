#!/usr/bin/env bash
# The reproduction runs behind the notebooks 40-43, on the embedded local model (no key, no network).
# Every sweep is resumable: rerun this script after an interruption and only missing runs are computed.
# Budget: the quick presets (4 x 4 domain, 8 iterations, 4 samples; bandit 20 steps), 2 seeds.
# About an hour on 2 CPU cores. Results go to runs/repro/; the notebooks read them from there.
# Extra arguments go to every `expo sweep` (e.g. --llm http://127.0.0.1:8080/v1#qwen --jobs 4 for a server).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/expo ] || bash tools/setup_env.sh
. .venv/bin/activate
OUT=${EXPO_NB_REPRO:-runs/repro}
SEEDS=${SEEDS:-0,1}
expo sweep linreg-quick --methods expo,opro,opro-enhanced --seeds "$SEEDS" --out "$OUT/linreg" "$@"
expo sweep bandit-easy-quick --methods expo,opro --seeds "$SEEDS" --iterations 20 --out "$OUT/bandit-easy" "$@"
expo sweep tsp10-quick --methods expo,opro --seeds "$SEEDS" --out "$OUT/tsp10" "$@"
expo sweep linreg-quick --methods expo-d-only,expo-i-only,neuralucb --seeds "$SEEDS" --out "$OUT/linreg" "$@"
expo sweep linreg-quick --methods expo-es --seeds "$SEEDS" --out "$OUT/linreg" "$@"
