#!/usr/bin/env bash
# Stage 2 (DPO + NLL) against its SFT-only control on NCBI-disease, several seeds, one stage-1 model.
# The control trains NLL on the same chosen names with the same pairs, steps and lr, so any gain of
# stage 2 over it comes from the rejected names. Paired McNemar tests go to benchmarks/results/.
#
#   bash benchmarks/ncbi_stage2_seeds.sh 42 43 44
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
CONFIG=${CONFIG:-recipes/configs/ncbi_dpo.yaml}
for seed in "$@"; do
  for arm in dpo sft; do
    out=outputs/ncbi-stage2-${arm}-s${seed}
    if [[ -f $out/stage2_results.json ]]; then echo "skip $out (done)"; continue; fi
    if [[ $arm == sft ]]; then extra=(--loss_type sft --loss_weights 1.0); else extra=(); fi
    $LAUNCH recipes/stage2_dpo.py --config "$CONFIG" --seed "$seed" --output_dir "$out" "${extra[@]}" > "$out.log" 2>&1
  done
  $PY benchmarks/paired_test.py outputs/ncbi-stage2-sft-s${seed} outputs/ncbi-stage2-dpo-s${seed} \
    > benchmarks/results/ncbi_stage2_vs_control_seed${seed}.json
done
