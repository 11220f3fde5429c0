#!/usr/bin/env bash
# Mining negatives among unseen concepts (the unseen-concept issue's lever), on NCBI, stage 1 from
# scratch (outputs/ncbi-stage1): the paper rule's pairs from the training mentions plus N KB names of
# concepts no training mention carries, each mined as a mention of its own (`unseen_concept_names`),
# against the same training mentions' pairs alone; stage 2 (DPO + NLL, seed SEED) on each, side by side.
#
#   bash benchmarks/unseen_concept_negatives.sh mine     # pairs (N = UNSEEN, default 5000), and the corpus-only subset
#   bash benchmarks/unseen_concept_negatives.sh stage2   # both stage-2 arms, one thread each
#   bash benchmarks/unseen_concept_negatives.sh bench    # every peer, stage 1 and both arms, hybrid + ablation
#   ABBREVIATIONS=1 bash benchmarks/unseen_concept_negatives.sh bench   # the same with abbreviations expanded
#   bash benchmarks/unseen_concept_negatives.sh summary  # the models alone (KB names only), paired
#   SEED=43 bash benchmarks/unseen_concept_negatives.sh stage2; SEEDS="42 43" bash benchmarks/unseen_concept_negatives.sh summary
#   SEED=43 bash benchmarks/unseen_concept_negatives.sh bench   # results tagged unseen_concept_negatives_seed43
#
# The corpus-only arm's pairs are the same run's pairs without the KB names' (mining the corpus alone
# gives exactly those: tests/test_mining.py), so the two arms differ in those pairs alone.
# A step whose result exists is skipped, so a stopped lane resumes where it was.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
SEED=${SEED:-42}
UNSEEN=${UNSEEN:-5000}
MINED=outputs/ncbi-pairs-unseen${UNSEEN}
export PYTHONUNBUFFERED=1
case ${1:?mine, stage2, bench or summary} in
  mine)
    if [[ ! -f $MINED/mining_summary.json ]]; then
      OMP_NUM_THREADS=${THREADS:-2} $LAUNCH recipes/mine.py --config recipes/configs/ncbi/mine.yaml \
        --unseen_concept_names "$UNSEEN" --output_dir "$MINED" > "$MINED.log" 2>&1
    fi
    $PY - "$MINED" <<'PY'
import sys
from datasets import load_from_disk
from angel_trl.data.unseen_concepts import is_unseen_concept_name
pairs = load_from_disk(f"{sys.argv[1]}/train")
corpus_only = pairs.filter(lambda row: not is_unseen_concept_name(row["mention_id"]))
corpus_only.save_to_disk(f"{sys.argv[1]}/train-corpus-only")
print(f"{len(pairs)} pairs, {len(pairs) - len(corpus_only)} of them from unseen-concept names; corpus only: {len(corpus_only)}")
PY
    ;;
  stage2)
    ARMS=dpo LANES=1 PAIRS=$MINED/train DEV_PAIRS=$MINED/dev TAG=unseen${UNSEEN} bash benchmarks/stage2_seeds.sh "$SEED" &
    ARMS=dpo LANES=1 PAIRS=$MINED/train-corpus-only DEV_PAIRS=$MINED/dev TAG=corpusonly${UNSEEN} bash benchmarks/stage2_seeds.sh "$SEED" &
    wait ;;
  bench)
    abbreviations=(); if [[ -n ${ABBREVIATIONS:-} ]]; then abbreviations=(--expand-abbreviations); fi
    OMP_NUM_THREADS=${BENCH_THREADS:-2} $PY benchmarks/accuracy.py --dataset ncbi --protocols kb+train --hybrid --hybrid-ablation "${abbreviations[@]+"${abbreviations[@]}"}" \
      --model "angel-trl stage 1 (from scratch)=outputs/ncbi-stage1" \
      --model "angel-trl stage 2, training mentions' pairs, seed $SEED=outputs/ncbi-stage2-corpusonly${UNSEEN}-dpo-s$SEED" \
      --model "angel-trl stage 2, + unseen-concept names' pairs, seed $SEED=outputs/ncbi-stage2-unseen${UNSEEN}-dpo-s$SEED" \
      --cache-dir "${CACHE_DIR:-benchmarks/work}" --tag "unseen_concept_negatives$([[ $SEED == 42 ]] || echo "_seed$SEED")" ;;
  summary)  # SEEDS="42 43": every seed's stage-2 runs of each arm
    runs() { local dirs=() seed; for seed in ${SEEDS:-$SEED}; do dirs+=("outputs/ncbi-stage2-$1${UNSEEN}-dpo-s$seed"); done; (IFS=,; echo "${dirs[*]}"); }
    $PY benchmarks/seeds_summary.py --out benchmarks/results/ncbi_stage2_unseen_concept_negatives \
      --arm "stage 1 (from scratch)=outputs/ncbi-stage1" \
      --arm "stage 2, training mentions' pairs=$(runs corpusonly)" \
      --arm "stage 2, + unseen-concept names' pairs=$(runs unseen)" \
      --pair "stage 1 (from scratch)" "stage 2, + unseen-concept names' pairs" \
      --pair "stage 2, training mentions' pairs" "stage 2, + unseen-concept names' pairs" ;;
  *) echo "unknown lane $1" >&2; exit 2 ;;
esac
