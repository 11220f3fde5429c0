#!/usr/bin/env bash
# Stage 2 (DPO + NLL) against its SFT-only control on NCBI-disease, several seeds, one stage-1 model.
# The control trains NLL on the same chosen names with the same pairs, steps and lr, so any gain of
# stage 2 over it comes from the rejected names. Paired McNemar tests go to benchmarks/results/.
#
#   bash benchmarks/ncbi_stage2_seeds.sh 42 43 44
#   # held-out (cross-fitted) pairs from recipes/mine_crossfit.py instead of the paper-rule pairs:
#   PAIRS=outputs/ncbi-pairs-crossfit/train TAG=crossfit bash benchmarks/ncbi_stage2_seeds.sh 42
#
# The two arms of a seed run side by side, one thread each (THREADS): on a 2-core machine that is
# faster than one after the other with two threads, and neither arm sees the other's load alone.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
CONFIG=${CONFIG:-recipes/configs/ncbi_dpo.yaml}
PAIRS=${PAIRS:-}            # empty: the config's train_pairs
TAG=${TAG:+-$TAG}           # run names: outputs/ncbi-stage2${TAG}-{dpo,sft}-s<seed>
THREADS=${THREADS:-1}
extra_pairs=()
if [[ -n $PAIRS ]]; then extra_pairs=(--train_pairs "$PAIRS"); fi
for seed in "$@"; do
  pids=()
  for arm in dpo sft; do
    out=outputs/ncbi-stage2${TAG}-${arm}-s${seed}
    if [[ -f $out/stage2_results.json ]]; then echo "skip $out (done)"; continue; fi
    if [[ $arm == sft ]]; then extra=(--loss_type sft --loss_weights 1.0); else extra=(); fi
    # keep_start_if_best off: these runs measure what stage 2 itself does, not model selection.
    OMP_NUM_THREADS=$THREADS $LAUNCH recipes/stage2_dpo.py --config "$CONFIG" --seed "$seed" --output_dir "$out" \
      --keep_start_if_best false "${extra_pairs[@]}" "${extra[@]}" > "$out.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  $PY benchmarks/paired_test.py outputs/ncbi-stage2${TAG}-sft-s${seed} outputs/ncbi-stage2${TAG}-dpo-s${seed} \
    > benchmarks/results/ncbi_stage2${TAG}_vs_control_seed${seed}.json
done
