#!/usr/bin/env bash
# The reproduction at the paper's protocol on the embedded local model (issue 12; the protocol, the budget and
# every difference from the paper are in nbs/results/paper/PROTOCOL.md). Resumable: rerun it after an
# interruption and only missing work is done (finished runs are skipped, an interrupted one resumes).
# Working directories (with checkpoints and full caches) go to runs/paper/; each finished run and each domain is
# copied in compact form to nbs/results/paper/ and committed at once (COMMIT=0 to skip the commit). A session
# that must stop during a run or a domain's generation keeps what it has with
#   python tools/repro_commit.py --unfinished runs/paper nbs/results/paper
# (the replies so far, as partial-cache.sqlite), and the next run of this script continues from them.
# STAGES picks what to run, in order; SEEDS the seeds. Extra arguments go to every `expo run` / `expo domain`,
# e.g. the paper's models: --llm openai:gpt-3.5-turbo --rephraser openai:gpt-4 --embedder openai:text-embedding-3-large
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/expo ] || bash tools/setup_env.sh
. .venv/bin/activate
WORK=${EXPO_NB_WORK:-runs/paper}
KEEP=${EXPO_NB_KEEP:-nbs/results/paper}
SEEDS=${SEEDS:-0 1 2 3 4}               # repetitions of LR and TSP runs
BANDIT_SEEDS=${BANDIT_SEEDS:-0 1 2}      # repetitions per bandit environment (2 environments: 6 runs)
STAGES=${STAGES:-lr-main bandit-main lr-es tsp-main lr-ablations lr-handwritten lr-variants lr2-main tsp-eta bandit-bsscd}
EXTRA=("$@")
keep() { python tools/repro_commit.py "$1" "$2" $([ "${COMMIT:-1}" = 1 ] || echo --no-commit); }
restore() {  # WORK_DIR KEEP_DIR: an earlier session's replies, so that only the missing work is done
  if [ -f "$2/partial-cache.sqlite" ] && [ ! -f "$1/cache.sqlite" ]; then
    mkdir -p "$1"; cp "$2/partial-cache.sqlite" "$1/cache.sqlite"
  fi
}

domain() {  # TASK PRESET: one domain per task, shared by every method and seed
  local task=$1 preset=$2
  [ -f "$KEEP/domains/$task/domain.json" ] && return
  restore "$WORK/domains/$task" "$KEEP/domains/$task"
  expo domain "$preset" --out "$WORK/domains/$task" --show 3 "${EXTRA[@]}"
  keep "$WORK/domains/$task" "$KEEP/domains/$task"
}

runs() {  # GROUP PRESET TASK METHODS [expo run options]: seed-major, so that methods are paired as they finish
  # DOMAIN_JSON: another domain than the task's shared one (a variants file is embedded by the run)
  local group=$1 preset=$2 task=$3 methods=$4; shift 4
  for seed in $SEEDS; do
    for method in ${methods//,/ }; do
      [ -f "$KEEP/$group/$method/seed-$seed/summary.json" ] && continue
      restore "$WORK/$group/$method/seed-$seed" "$KEEP/$group/$method/seed-$seed"
      expo run "$preset" --method "$method" --seed "$seed" --out "$WORK/$group/$method/seed-$seed" \
        --domain "${DOMAIN_JSON:-$KEEP/domains/$task/domain.json}" --no-progress "$@" "${EXTRA[@]}"
      keep "$WORK/$group/$method/seed-$seed" "$KEEP/$group/$method/seed-$seed"
    done
  done
}

for stage in $STAGES; do
  case $stage in
    lr-main)      domain linreg linreg-paper; runs linreg linreg-paper linreg expo,opro ;;   # Fig. 2's main pair
    lr-es)        domain linreg linreg-paper; runs linreg linreg-paper linreg expo-es,opro-enhanced ;;
    tsp-main)     domain tsp10 tsp10-paper; runs tsp10 tsp10-paper tsp10 expo,opro ;;
    bandit-main)  domain bandit-hard bandit-hard-paper; domain bandit-easy bandit-easy-paper
                  for env in 0 1; do
                    SEEDS=$BANDIT_SEEDS runs "bandit-hard/env-$env" bandit-hard-paper bandit-hard expo,expo-es,opro --env-seed $env
                    SEEDS=$BANDIT_SEEDS runs "bandit-easy/env-$env" bandit-easy-paper bandit-easy expo,expo-es,opro --env-seed $env
                  done ;;
    lr-ablations) runs linreg linreg-paper linreg expo-d-only,expo-i-only,neuralucb,expo-exemplar-input ;;
    lr-handwritten)  # open check (c): the same EXPO on a hand-written 101 x 101 domain (tools/handwritten_domain.py)
                  DOMAIN_JSON=$KEEP/domains/linreg-handwritten/variants.json runs linreg-handwritten linreg-paper linreg expo ;;
    lr-variants)  # Fig. 8: OPRO with the prompt EXPO seed s ended on; Fig. 14: OPRO with all 8 samples at T = 1
                  for seed in $SEEDS; do
                    [ -f "$KEEP/linreg/expo/seed-$seed/summary.json" ] || continue
                    SEEDS=$seed runs linreg-fixed-best linreg-paper linreg opro --prompt-from "$KEEP/linreg/expo/seed-$seed"
                  done
                  runs linreg-all-t1 linreg-paper linreg opro --temperatures 1,1,1,1,1,1,1,1 ;;
    tsp-eta)      # Fig. 7: EXPO at eta = 10 and 1000 on TSP-10 (eta = 100 is tsp-main)
                  runs tsp10-eta10 tsp10-paper tsp10 expo --eta 10
                  runs tsp10-eta1000 tsp10-paper tsp10 expo --eta 1000 ;;
    lr2-main)     domain linreg2 linreg2-paper; runs linreg2 linreg2-paper linreg2 expo,opro,expo-es,opro-enhanced ;;
    bandit-bsscd) domain bandit-hard-bsscd bandit-hard-bsscd-paper
                  for env in 0 1; do SEEDS=$BANDIT_SEEDS runs "bandit-hard-bsscd/env-$env" bandit-hard-bsscd-paper bandit-hard-bsscd expo,opro --env-seed $env; done ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
