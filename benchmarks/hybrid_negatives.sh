#!/usr/bin/env bash
# Stage 2 underneath the hybrid linker, and where its negatives come from (the hybrid issue's
# ablation "does DPO still help inside the hybrid?" and mining's --negatives_from hybrid against the
# paper rule), on NCBI, stage 1 from scratch (outputs/ncbi-stage1), in two lanes of one thread each:
#
#   bash benchmarks/hybrid_negatives.sh beam     # paper-rule pairs from the beam, then stage 2 (seed 42)
#   bash benchmarks/hybrid_negatives.sh hybrid   # paper-rule pairs from the hybrid's candidates, then stage 2
#   bash benchmarks/hybrid_negatives.sh bench    # after both: every peer and the three models, hybrid + ablation
#   ABBREVIATIONS=1 bash benchmarks/hybrid_negatives.sh bench   # the same with abbreviations expanded
#
# CACHE_DIR (default benchmarks/work) keeps the dense embeddings and the hybrid's scored candidates,
# so the second bench rescores nothing it has scored; BENCH_THREADS (default 2) is its torch threads.
# A step whose result file exists is skipped, so a stopped lane resumes where it was.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
SEED=${SEED:-42}
export OMP_NUM_THREADS=1
export PYTHONUNBUFFERED=1
run() {  # run DONE_FILE LOG COMMAND...: COMMAND unless DONE_FILE exists
  local done_file=$1 log=$2; shift 2
  if [[ -f $done_file ]]; then echo "skip ($done_file exists)"; return; fi
  echo "$(date -u +%H:%M) run: $* > $log"
  "$@" > "$log" 2>&1
}
case ${1:?beam, hybrid or bench} in
  beam)
    run outputs/ncbi-pairs/mining_summary.json outputs/ncbi-pairs.log \
      $LAUNCH recipes/mine.py --config recipes/configs/ncbi/mine.yaml
    ARMS=dpo LANES=1 bash benchmarks/stage2_seeds.sh "$SEED" ;;
  hybrid)
    run outputs/ncbi-pairs-hybridneg/mining_summary.json outputs/ncbi-pairs-hybridneg.log \
      $LAUNCH recipes/mine.py --config recipes/configs/ncbi/mine.yaml --negatives_from hybrid --output_dir outputs/ncbi-pairs-hybridneg
    ARMS=dpo LANES=1 PAIRS=outputs/ncbi-pairs-hybridneg/train DEV_PAIRS=outputs/ncbi-pairs-hybridneg/dev TAG=hybridneg \
      bash benchmarks/stage2_seeds.sh "$SEED" ;;
  bench)
    abbreviations=(); if [[ -n ${ABBREVIATIONS:-} ]]; then abbreviations=(--expand-abbreviations); fi
    OMP_NUM_THREADS=${BENCH_THREADS:-2} $PY benchmarks/accuracy.py --dataset ncbi --protocols kb+train --hybrid --hybrid-ablation "${abbreviations[@]+"${abbreviations[@]}"}" \
      --model "angel-trl stage 1 (from scratch)=outputs/ncbi-stage1" \
      --model "angel-trl stage 2, beam negatives (paper rule), seed $SEED=outputs/ncbi-stage2-dpo-s$SEED" \
      --model "angel-trl stage 2, hybrid negatives (paper rule), seed $SEED=outputs/ncbi-stage2-hybridneg-dpo-s$SEED" \
      --cache-dir "${CACHE_DIR:-benchmarks/work}" --tag hybrid_negatives ;;
  *) echo "unknown lane $1" >&2; exit 2 ;;
esac
