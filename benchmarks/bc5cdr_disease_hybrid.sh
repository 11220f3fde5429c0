#!/usr/bin/env bash
# BC5CDR-disease for the "beat the best peer" table: the best BC5CDR-disease model (stage 1 fine-tuned
# for 2 epochs from MEDIC pre-training (b), as `benchmarks/exact_remeasure.sh bc5cdr` makes it) and the
# hybrid linker on it beside every peer, KB + train, with and without abbreviations expanded.
#
#   THREADS=2 bash benchmarks/bc5cdr_disease_hybrid.sh pretrain   # MEDIC pre-training (a), 2 epochs, then its DPO (b)
#   THREADS=2 bash benchmarks/bc5cdr_disease_hybrid.sh stage1 --final_eval_splits test   # fine-tune from (b), 2 epochs
#   THREADS=2 bash benchmarks/bc5cdr_disease_hybrid.sh bench      # results: bc5cdr-disease_hybrid_pt2ep.*
#   THREADS=2 ABBREVIATIONS=1 bash benchmarks/bc5cdr_disease_hybrid.sh bench   # results: bc5cdr-disease_abbreviations_hybrid_pt2ep.*
#
# On a 2-core machine, all of it takes more than one 3-hour session: (a) ran at 1.1 s a step on 2 threads
# (2,374 steps: ~45 min); earlier runs took ~7 min for (b), ~61 min of training for the fine-tune on one
# thread beside another run, and ~30 min for the bench's decoding and hybrid scoring.
#
# Each lane needs the one before it. A step whose result exists is skipped, and a training step stopped
# after a checkpoint continues from it. THREADS (default 1) sets the CPU threads: float sums depend on
# how many threads share them, so a model trained with another count differs slightly.
# Arguments after the lane's name go to its recipe or to benchmarks/accuracy.py.
# Edit this file only while no lane runs: bash reads a running script as it goes.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
CACHE_DIR=${CACHE_DIR:-benchmarks/work}
export OMP_NUM_THREADS=${THREADS:-1} PYTHONUNBUFFERED=1
mkdir -p outputs  # the lanes' logs live there
A=outputs/medic-pretrain-2ep B=outputs/medic-pretrain-2ep-dpo FT=outputs/bc5cdr-disease-stage1-from-medic-pt2ep
MODEL="angel-trl stage 1, MEDIC pre-trained (b), 2 epochs=$FT"  # one label: the hybrid's cached candidates are per label
resume() { if compgen -G "$1/checkpoint-*" > /dev/null; then echo --resume_from_checkpoint true; fi; }
lane=${1:?pretrain, stage1 or bench}; shift
case $lane in
  pretrain)
    [[ -f $A/stage1_results.json ]] || $LAUNCH recipes/pretrain.py --config recipes/configs/medic/pretrain.yaml --num_train_epochs 2 \
      --output_dir $A $(resume $A) >> $A.log 2>&1
    [[ -f $B/stage2_results.json ]] || $LAUNCH recipes/stage2_dpo.py --config recipes/configs/medic/pretrain_dpo.yaml --stage1_model $A \
      --output_dir $B $(resume $B) >> $B.log 2>&1 ;;
  stage1)
    [[ -f $FT/stage1_results.json ]] || $LAUNCH recipes/stage1.py --config recipes/configs/bc5cdr-disease/stage1_cpu.yaml \
      --model_name_or_path $B --output_dir $FT --num_train_epochs 2 $(resume $FT) "$@" >> $FT.log 2>&1 ;;
  bench)
    abbreviations=(); if [[ -n ${ABBREVIATIONS:-} ]]; then abbreviations=(--expand-abbreviations); fi
    $PY benchmarks/accuracy.py --dataset bc5cdr-disease --model "$MODEL" --protocols kb+train --hybrid --hybrid-ablation \
      "${abbreviations[@]+"${abbreviations[@]}"}" --cache-dir "$CACHE_DIR" --tag hybrid_pt2ep "$@" ;;
  *) echo "unknown lane $lane" >&2; exit 2 ;;
esac
