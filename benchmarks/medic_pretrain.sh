#!/usr/bin/env bash
# KB pre-training (ANGEL_PT) on MEDIC, measured end to end on 2 CPU cores:
#   (a) positive-only pre-training on the MEDIC corpus;
#   (b) (a) + negative-aware pre-training (DPO + NLL on the KB's TF-IDF pairs);
#   zero-shot NCBI-disease and BC5CDR-disease test scores of both (seen / unseen split by each
#   corpus' training mentions, which neither model trained on);
#   NCBI-disease stage 1 fine-tuned from (a) and from (b) (ncbi/stage1_cpu.yaml, FT_EPOCHS epochs);
#   then stage 2 on top of the fine-tune from (b): pairs mined with it (ncbi/mine.yaml), DPO + NLL
#   against its SFT-only control for each of STAGE2_SEEDS (benchmarks/stage2_seeds.sh).
#
#   PT_EPOCHS=2 FT_EPOCHS=2 bash benchmarks/medic_pretrain.sh
#   STAGE2_SEEDS= bash benchmarks/medic_pretrain.sh   # without stage 2
#
# Results: benchmarks/results/medic_pretrain_<PT_EPOCHS>ep_{zeroshot,finetune,stage2}.{json,md}. A step whose
# results file exists is skipped, so an interrupted run resumes. Independent steps run side by side,
# one thread each: on 2 cores that beats one after the other with two threads.
set -euo pipefail
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --config_file recipes/accelerate/cpu.yaml}
PT_EPOCHS=${PT_EPOCHS:-2}
FT_EPOCHS=${FT_EPOCHS:-2}
DATA='{data_dir}'  # the recipes resolve it ($ANGEL_TRL_DATA or ../shared/data)
A=outputs/medic-pretrain-${PT_EPOCHS}ep
B=$A-dpo
FT=outputs/ncbi-stage1-from-medic-pt${PT_EPOCHS}ep
STAGE2_SEEDS=${STAGE2_SEEDS-42 43 44}
MINED=outputs/ncbi-pairs-from-medic-pt${PT_EPOCHS}ep

# run DONE_FILE LOG COMMAND...: run COMMAND on one thread unless DONE_FILE exists.
run() {
  local done_file=$1 log=$2; shift 2
  if [[ -f $done_file ]]; then echo "skip ($done_file exists)"; return; fi
  echo "run: $* > $log"
  OMP_NUM_THREADS=1 "$@" > "$log" 2>&1
}

zeroshot() {  # zeroshot MODEL_DIR DATASET: evaluate.py on that dataset's test set, seen/unseen by its train set
  local model=$1 name=$2 out=$1/zeroshot-$2
  local args=(--data_dir ../shared/data --kb_path "$DATA/kb/medic/medic_06Jul2012.txt" --kb_format medic --corpus_format pubtator)
  case $name in
    ncbi-disease) args+=(--test_file "$DATA/ncbi-disease/NCBItestset_corpus.txt" --train_file "$DATA/ncbi-disease/NCBItrainset_corpus.txt") ;;
    bc5cdr-disease) args+=(--entity_types Disease --test_file "$DATA/bc5cdr/CDR_TestSet.PubTator.txt" --train_file "$DATA/bc5cdr/CDR_TrainingSet.PubTator.txt") ;;
  esac
  run "$out/eval_results.json" "$out.log" $PY recipes/evaluate.py --model_dir "$model" --output_dir "$out" "${args[@]}"
}

finetune() {  # finetune PRETRAINED_DIR OUTPUT_DIR: NCBI-disease stage 1 from that checkpoint
  run "$2/stage1_results.json" "$2.log" $LAUNCH recipes/stage1.py --config recipes/configs/ncbi/stage1_cpu.yaml --model_name_or_path "$1" --output_dir "$2" --num_train_epochs "$FT_EPOCHS"
}

# (a) on both threads: nothing else can run yet.
if [[ ! -f $A/stage1_results.json ]]; then
  $LAUNCH recipes/pretrain.py --config recipes/configs/medic/pretrain.yaml --num_train_epochs "$PT_EPOCHS" --output_dir "$A" > "$A.log" 2>&1
fi
# Then two lanes, one thread each: (b) and what needs it; what needs only (a).
(
  run "$B/stage2_results.json" "$B.log" $LAUNCH recipes/stage2_dpo.py --config recipes/configs/medic/pretrain_dpo.yaml --stage1_model "$A" --output_dir "$B"
  zeroshot "$B" ncbi-disease
  zeroshot "$B" bc5cdr-disease
  finetune "$B" "$FT-dpo"
) &
lane_b=$!
zeroshot "$A" ncbi-disease
zeroshot "$A" bc5cdr-disease
finetune "$A" "$FT"
wait "$lane_b"

$PY benchmarks/pretrain_summary.py --out "benchmarks/results/medic_pretrain_${PT_EPOCHS}ep_zeroshot" \
  --run "(a) KB pre-training, positive-only=$A" --run "(b) (a) + negative-aware KB pre-training=$B" \
  --pair "(a) KB pre-training, positive-only" "(b) (a) + negative-aware KB pre-training"
$PY benchmarks/seeds_summary.py --out "benchmarks/results/medic_pretrain_${PT_EPOCHS}ep_finetune" \
  --arm "NCBI stage 1 from scratch=outputs/ncbi-stage1" --arm "NCBI stage 1 from (a), $FT_EPOCHS epochs=$FT" --arm "NCBI stage 1 from (b), $FT_EPOCHS epochs=$FT-dpo" \
  --pair "NCBI stage 1 from scratch" "NCBI stage 1 from (a), $FT_EPOCHS epochs" --pair "NCBI stage 1 from scratch" "NCBI stage 1 from (b), $FT_EPOCHS epochs" \
  --pair "NCBI stage 1 from (a), $FT_EPOCHS epochs" "NCBI stage 1 from (b), $FT_EPOCHS epochs"

# Stage 2 on the fine-tune from (b): mine its own mistakes, then DPO + NLL vs the SFT-only control.
if [[ -n $STAGE2_SEEDS ]]; then
  run "$MINED/mining_summary.json" "$MINED.log" $LAUNCH recipes/mine.py --config recipes/configs/ncbi/mine.yaml --model_dir "$FT-dpo" --output_dir "$MINED"
  tag=from-pt${PT_EPOCHS}ep
  STAGE1=$FT-dpo PAIRS=$MINED/train DEV_PAIRS=$MINED/dev TAG=$tag bash benchmarks/stage2_seeds.sh $STAGE2_SEEDS
  runs() { local dirs=(); for seed in $STAGE2_SEEDS; do dirs+=("outputs/ncbi-stage2-$tag-$1-s$seed"); done; (IFS=,; echo "${dirs[*]}"); }
  $PY benchmarks/seeds_summary.py --out "benchmarks/results/medic_pretrain_${PT_EPOCHS}ep_stage2" \
    --arm "NCBI stage 1 from (b)=$FT-dpo" --arm "SFT-only control=$(runs sft)" --arm "stage 2 (DPO + NLL)=$(runs dpo)" \
    --pair "SFT-only control" "stage 2 (DPO + NLL)" --pair "NCBI stage 1 from (b)" "stage 2 (DPO + NLL)"
fi
