#!/usr/bin/env bash
# BC5CDR-chemical for the "beat the best peer" table: stage 1 from scratch (3 epochs, as the
# chemical row of docs/benchmarks.md), the paper rule's pairs, stage 2 (DPO + NLL) and the hybrid
# linker on stage 2 beside every peer, KB + train, with and without abbreviations expanded.
#
#   bash benchmarks/bc5cdr_chemical_hybrid.sh stage1   # ~95 min on one thread
#   bash benchmarks/bc5cdr_chemical_hybrid.sh peers    # the dense peer encodes MeSH's 676k names into CACHE_DIR (~1.5 h on one thread), resumable
#   bash benchmarks/bc5cdr_chemical_hybrid.sh mine
#   bash benchmarks/bc5cdr_chemical_hybrid.sh stage2 --final_eval_splits test   # the bench reads test's predictions only
#   bash benchmarks/bc5cdr_chemical_hybrid.sh bench    # results: bc5cdr-chemical_hybrid_stage2.*
#   ABBREVIATIONS=1 bash benchmarks/bc5cdr_chemical_hybrid.sh bench
#   bash benchmarks/bc5cdr_chemical_hybrid.sh stages   # stage 1 and stage 2 under the hybrid in one run (stage 2's candidates reused from bench)
#
# stage1 and peers can run side by side (one thread each); the others need the step before them.
# A step whose result exists is skipped, so a lane stopped by a session's end resumes where it was
# (stage 1 and stage 2 from their last epoch's checkpoint, the dense embeddings from their last chunk).
# Arguments after the lane's name go to its recipe or to benchmarks/accuracy.py.
# Edit this file only while no lane runs: bash reads a running script as it goes.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
CONFIGS=recipes/configs/bc5cdr-chemical
CACHE_DIR=${CACHE_DIR:-benchmarks/work}
export OMP_NUM_THREADS=${THREADS:-1} PYTHONUNBUFFERED=1
mkdir -p outputs  # the lanes' logs live there
STAGE2="angel-trl stage 2 (DPO, from scratch)=outputs/bc5cdr-chemical-stage2"  # one label: the hybrid's cached candidates are per label
# The hybrid and its ablation beside every peer, KB + train, tagged $1; the rest: --model arguments.
hybrid_bench() {
  local tag=$1; shift
  local abbreviations=(); if [[ -n ${ABBREVIATIONS:-} ]]; then abbreviations=(--expand-abbreviations); fi
  $PY benchmarks/accuracy.py --dataset bc5cdr-chemical --protocols kb+train --hybrid --hybrid-ablation "${abbreviations[@]+"${abbreviations[@]}"}" \
    --cache-dir "$CACHE_DIR" --tag "$tag" "$@"
}
resume() { if compgen -G "$1/checkpoint-*" > /dev/null; then echo --resume_from_checkpoint true; fi; }
lane=${1:?stage1, peers, mine, stage2, bench or stages}; shift
case $lane in
  stage1)
    out=outputs/bc5cdr-chemical-stage1
    [[ -f $out/stage1_results.json ]] || $LAUNCH recipes/stage1.py --config $CONFIGS/stage1_cpu.yaml --num_train_epochs 3 $(resume $out) "$@" >> $out.log 2>&1 ;;
  peers)  # no model: the peers alone, to fill the dense embedding cache before the hybrid needs it
    $PY benchmarks/accuracy.py --dataset bc5cdr-chemical --protocols kb+train --cache-dir "$CACHE_DIR" --results-dir "$CACHE_DIR/bc5cdr-chemical-peers" "$@" ;;
  mine)
    out=outputs/bc5cdr-chemical-pairs
    [[ -f $out/mining_summary.json ]] || $LAUNCH recipes/mine.py --config $CONFIGS/mine.yaml "$@" > $out.log 2>&1 ;;
  stage2)
    out=outputs/bc5cdr-chemical-stage2
    [[ -f $out/stage2_results.json ]] || $LAUNCH recipes/stage2_dpo.py --config $CONFIGS/stage2_dpo.yaml $(resume $out) "$@" >> $out.log 2>&1 ;;
  bench)
    hybrid_bench hybrid_stage2 --model "$STAGE2" "$@" ;;
  stages)
    hybrid_bench hybrid_stages --model "angel-trl stage 1 (from scratch)=outputs/bc5cdr-chemical-stage1" --model "$STAGE2" "$@" ;;
  *) echo "unknown lane $lane" >&2; exit 2 ;;
esac
