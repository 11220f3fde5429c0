#!/usr/bin/env bash
# Re-measure stage 2 after the exact-decoding and shared-name fixes ("ANGEL, exactly"), in two lanes
# that each use one thread, so both run side by side on a 2-core machine:
#
#   bash benchmarks/exact_remeasure.sh ncbi      # stage 1 from scratch, pairs by both rules, DPO vs SFT control
#   bash benchmarks/exact_remeasure.sh bc5cdr    # MEDIC pre-training (a), (b); BC5CDR-disease fine-tune from (b), both rules' DPO
#                                                # vs SFT
#   bash benchmarks/exact_remeasure.sh ncbi-ft   # the pre-training comparison: NCBI fine-tuned from (a) and from (b)
#                                                # (after the first two steps of bc5cdr, which make (a) and (b))
#
# Every step whose result file exists is skipped, and a training step stopped after a checkpoint
# continues from it, so a lane that was stopped resumes where it was.
# SEEDS (default 42 43 44) are the stage-2 seeds; the seeds loop is outermost, so a lane stopped
# early still has whole seeds for both rules. Results: benchmarks/results/<dataset>_stage2*_seed*.json
# (paired McNemar tests) and the seeds summaries written at the end of each lane.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
SEEDS=${SEEDS:-42 43 44}
export OMP_NUM_THREADS=1
export PYTHONUNBUFFERED=1  # log lines carry the time they were written, not the time a buffer filled
A=outputs/medic-pretrain-2ep B=outputs/medic-pretrain-2ep-dpo  # MEDIC pre-training (a) and (b), which both later lanes start from

run() {  # run DONE_FILE LOG COMMAND...: COMMAND unless DONE_FILE exists
  local done_file=$1 log=$2; shift 2
  if [[ -f $done_file ]]; then echo "skip ($done_file exists)"; return; fi
  echo "$(date -u +%H:%M) run: $* > $log"
  "$@" > "$log" 2>&1
}

resume() {  # resume OUTPUT_DIR: the flag that continues a run stopped after a checkpoint, if it has one
  if compgen -G "$1/checkpoint-*" > /dev/null; then echo "--resume_from_checkpoint true"; fi
}

runs() {  # runs PREFIX ARM: comma-separated run dirs of every seed
  local dirs=() seed
  for seed in $SEEDS; do dirs+=("$1-$2-s$seed"); done
  (IFS=,; echo "${dirs[*]}")
}

ncbi() {
  run outputs/ncbi-stage1/stage1_results.json outputs/ncbi-stage1.log \
    $LAUNCH recipes/stage1.py --config recipes/configs/ncbi/stage1_cpu.yaml $(resume outputs/ncbi-stage1)
  # both rules from one decoding: outputs/ncbi-pairs (paper) and outputs/ncbi-pairs-official
  run outputs/ncbi-pairs-official/mining_summary.json outputs/ncbi-pairs.log \
    $LAUNCH recipes/mine.py --config recipes/configs/ncbi/mine.yaml --also_rules official
  local seed
  for seed in $SEEDS; do
    LANES=1 bash benchmarks/stage2_seeds.sh "$seed"
    LANES=1 PAIRS=outputs/ncbi-pairs-official/train DEV_PAIRS=outputs/ncbi-pairs-official/dev TAG=official \
      bash benchmarks/stage2_seeds.sh "$seed"
  done
  $PY benchmarks/seeds_summary.py --out benchmarks/results/ncbi_seeds \
    --arm "stage 1=outputs/ncbi-stage1" \
    --arm "SFT-only control, paper pairs=$(runs outputs/ncbi-stage2 sft)" \
    --arm "stage 2 (DPO + NLL), paper pairs=$(runs outputs/ncbi-stage2 dpo)" \
    --arm "SFT-only control, official pairs=$(runs outputs/ncbi-stage2-official sft)" \
    --arm "stage 2 (DPO + NLL), official pairs=$(runs outputs/ncbi-stage2-official dpo)" \
    --pair "SFT-only control, paper pairs" "stage 2 (DPO + NLL), paper pairs" \
    --pair "SFT-only control, official pairs" "stage 2 (DPO + NLL), official pairs" \
    --pair "stage 1" "stage 2 (DPO + NLL), paper pairs" \
    --pair "stage 1" "stage 2 (DPO + NLL), official pairs"
}

bc5cdr() {
  local a=$A b=$B ft=outputs/bc5cdr-disease-stage1-from-medic-pt2ep
  local mined=outputs/bc5cdr-disease-pairs-from-medic-pt2ep
  run $a/stage1_results.json $a.log \
    $LAUNCH recipes/pretrain.py --config recipes/configs/medic/pretrain.yaml --num_train_epochs 2 --output_dir $a $(resume $a)
  run $b/stage2_results.json $b.log \
    $LAUNCH recipes/stage2_dpo.py --config recipes/configs/medic/pretrain_dpo.yaml --stage1_model $a --output_dir $b $(resume $b)
  run $ft/stage1_results.json $ft.log \
    $LAUNCH recipes/stage1.py --config recipes/configs/bc5cdr-disease/stage1_cpu.yaml --model_name_or_path $b --output_dir $ft --num_train_epochs 2 $(resume $ft)
  # both rules from one decoding: $mined (paper) and $mined-official
  run $mined-official/mining_summary.json $mined.log \
    $LAUNCH recipes/mine.py --config recipes/configs/bc5cdr-disease/mine.yaml --model_dir $ft --output_dir $mined --also_rules official
  local seed
  for seed in $SEEDS; do
    LANES=1 DATASET=bc5cdr-disease STAGE1=$ft PAIRS=$mined/train DEV_PAIRS=$mined/dev TAG=from-pt2ep \
      EXTRA="--final_eval_splits test" bash benchmarks/stage2_seeds.sh "$seed"
    LANES=1 DATASET=bc5cdr-disease STAGE1=$ft PAIRS=$mined-official/train DEV_PAIRS=$mined-official/dev TAG=from-pt2ep-official \
      EXTRA="--final_eval_splits test" bash benchmarks/stage2_seeds.sh "$seed"
  done
  $PY benchmarks/seeds_summary.py --out benchmarks/results/bc5cdr_disease_stage2 \
    --arm "BC5CDR-disease stage 1 from (b)=$ft" \
    --arm "SFT-only control, paper pairs=$(runs outputs/bc5cdr-disease-stage2-from-pt2ep sft)" \
    --arm "stage 2 (DPO + NLL), paper pairs=$(runs outputs/bc5cdr-disease-stage2-from-pt2ep dpo)" \
    --arm "SFT-only control, official pairs=$(runs outputs/bc5cdr-disease-stage2-from-pt2ep-official sft)" \
    --arm "stage 2 (DPO + NLL), official pairs=$(runs outputs/bc5cdr-disease-stage2-from-pt2ep-official dpo)" \
    --pair "SFT-only control, paper pairs" "stage 2 (DPO + NLL), paper pairs" \
    --pair "SFT-only control, official pairs" "stage 2 (DPO + NLL), official pairs" \
    --pair "BC5CDR-disease stage 1 from (b)" "stage 2 (DPO + NLL), paper pairs" \
    --pair "BC5CDR-disease stage 1 from (b)" "stage 2 (DPO + NLL), official pairs"
}

ncbi_ft() {  # the pre-training comparison: NCBI fine-tuned from (a) and from (b), now that (b) keeps its dropout
  local a=$A b=$B ncbi_ft=outputs/ncbi-stage1-from-medic-pt2ep
  run $ncbi_ft/stage1_results.json $ncbi_ft.log \
    $LAUNCH recipes/stage1.py --config recipes/configs/ncbi/stage1_cpu.yaml --model_name_or_path $a --output_dir $ncbi_ft --num_train_epochs 2 $(resume $ncbi_ft)
  run $ncbi_ft-dpo/stage1_results.json $ncbi_ft-dpo.log \
    $LAUNCH recipes/stage1.py --config recipes/configs/ncbi/stage1_cpu.yaml --model_name_or_path $b --output_dir $ncbi_ft-dpo --num_train_epochs 2 $(resume $ncbi_ft-dpo)
  local scratch=()  # the from-scratch stage 1 joins the table when the ncbi lane's model is on this machine
  if [[ -f outputs/ncbi-stage1/stage1_results.json ]]; then
    scratch=(--arm "NCBI stage 1 from scratch=outputs/ncbi-stage1"
      --pair "NCBI stage 1 from scratch" "NCBI stage 1 from (a), 2 epochs" --pair "NCBI stage 1 from scratch" "NCBI stage 1 from (b), 2 epochs")
  fi
  $PY benchmarks/seeds_summary.py --out benchmarks/results/medic_pretrain_2ep_finetune \
    --arm "NCBI stage 1 from (a), 2 epochs=$ncbi_ft" --arm "NCBI stage 1 from (b), 2 epochs=$ncbi_ft-dpo" \
    --pair "NCBI stage 1 from (a), 2 epochs" "NCBI stage 1 from (b), 2 epochs" "${scratch[@]+"${scratch[@]}"}"
}

case ${1:-} in
  ncbi) ncbi ;;
  bc5cdr) bc5cdr ;;
  ncbi-ft) ncbi_ft ;;
  *) echo "usage: bash benchmarks/exact_remeasure.sh ncbi|bc5cdr|ncbi-ft" >&2; exit 2 ;;
esac
