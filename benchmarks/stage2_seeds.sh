#!/usr/bin/env bash
# Stage 2 (DPO + NLL) against its SFT-only control, several seeds, one stage-1 model, on DATASET
# (default ncbi; its config is recipes/configs/<DATASET>/stage2_dpo.yaml unless CONFIG says otherwise).
# The control trains NLL on the same chosen names with the same pairs, steps and lr, so any gain of
# stage 2 over it comes from the rejected names. Paired McNemar tests go to benchmarks/results/.
#
#   bash benchmarks/stage2_seeds.sh 42 43 44
#   # held-out (cross-fitted) pairs from recipes/mine_crossfit.py instead of the paper-rule pairs:
#   PAIRS=outputs/ncbi-pairs-crossfit/train TAG=crossfit bash benchmarks/stage2_seeds.sh 42
#   # another stage-1 model and pairs mined with it (what benchmarks/medic_pretrain.sh runs):
#   STAGE1=outputs/ncbi-stage1-from-medic-pt2ep-dpo PAIRS=outputs/ncbi-pairs-from-medic-pt2ep/train \
#     DEV_PAIRS=outputs/ncbi-pairs-from-medic-pt2ep/dev TAG=from-pt2ep bash benchmarks/stage2_seeds.sh 42 43 44
#   # BC5CDR-disease (bc5cdr-disease/stage2_dpo.yaml), on the fine-tune from MEDIC pre-training and pairs mined with it:
#   DATASET=bc5cdr-disease STAGE1=outputs/bc5cdr-disease-stage1-from-medic-pt2ep \
#     PAIRS=outputs/bc5cdr-disease-pairs-from-medic-pt2ep/train DEV_PAIRS=outputs/bc5cdr-disease-pairs-from-medic-pt2ep/dev \
#     TAG=from-pt2ep EXTRA="--final_eval_splits test" bash benchmarks/stage2_seeds.sh 42
#
# The two arms of a seed run side by side, one thread each (THREADS): on a 2-core machine that is
# faster than one after the other with two threads, and neither arm sees the other's load alone.
# LANES=1 runs them one after the other instead (a core is busy with something else); ARMS=dpo or
# ARMS=sft runs one arm only (the other elsewhere): the paired test runs once both arms are done.
# EXTRA adds recipe flags to both arms (EXTRA="--final_eval_splits test" skips linking the full dev set).
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
DATASET=${DATASET:-ncbi}
CONFIG=${CONFIG:-recipes/configs/${DATASET}/stage2_dpo.yaml}
RUN=$DATASET                # run names outputs/<RUN>-stage2...
RESULTS=${DATASET//-/_}     # result files benchmarks/results/<RESULTS>_stage2...
PAIRS=${PAIRS:-}            # empty: the config's train_pairs
DEV_PAIRS=${DEV_PAIRS:-}    # empty: the config's dev_pairs
STAGE1=${STAGE1:-}          # empty: the config's stage1_model (policy start and reference)
LANES=${LANES:-2}
ARMS=${ARMS:-dpo sft}
TAG=${TAG:+-$TAG}           # run names: outputs/<RUN>-stage2${TAG}-{dpo,sft}-s<seed>
THREADS=${THREADS:-1}
read -ra shared_args <<< "${EXTRA:-}"  # more recipe flags for both arms, e.g. EXTRA="--final_eval_splits test"
if [[ -n $PAIRS ]]; then shared_args+=(--train_pairs "$PAIRS"); fi
if [[ -n $DEV_PAIRS ]]; then shared_args+=(--dev_pairs "$DEV_PAIRS"); fi
if [[ -n $STAGE1 ]]; then shared_args+=(--stage1_model "$STAGE1"); fi
for seed in "$@"; do
  pids=()
  for arm in $ARMS; do
    out=outputs/${RUN}-stage2${TAG}-${arm}-s${seed}
    if [[ -f $out/stage2_results.json ]]; then echo "skip $out (done)"; continue; fi
    if [[ $arm == sft ]]; then extra=(--loss_type sft --loss_weights 1.0); else extra=(); fi
    # a run stopped after a checkpoint (a session that ended, a killed job) continues from it
    if compgen -G "$out/checkpoint-*" > /dev/null; then extra+=(--resume_from_checkpoint true); fi
    # keep_start_if_best off: these runs measure what stage 2 itself does, not model selection.
    OMP_NUM_THREADS=$THREADS $LAUNCH recipes/stage2_dpo.py --config "$CONFIG" --seed "$seed" --output_dir "$out" \
      --keep_start_if_best false "${shared_args[@]}" "${extra[@]}" > "$out.log" 2>&1 &
    if [[ $LANES == 1 ]]; then wait "$!"; else pids+=($!); fi
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid"; done
  control=outputs/${RUN}-stage2${TAG}-sft-s${seed} stage2=outputs/${RUN}-stage2${TAG}-dpo-s${seed}
  if [[ -f $control/stage2_results.json && -f $stage2/stage2_results.json ]]; then
    $PY benchmarks/paired_test.py "$control" "$stage2" > benchmarks/results/${RESULTS}_stage2${TAG}_vs_control_seed${seed}.json
  fi
done
