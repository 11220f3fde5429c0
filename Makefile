# angel-trl: `make demo` and `make test` set everything up themselves on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
ACCELERATE_CONFIG ?= recipes/accelerate/cpu.yaml

.PHONY: setup test test-fast demo demo-data bench ncbi gpu-check gpu-check-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: setup
	$(PY) -m pytest -q --durations=10

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not integration"

demo-data: setup
	$(PY) data/build_demo.py --out data/demo

# The demo pins its CPU threads: float sums depend on how many threads share them, and a different
# count moves the demo's acc@1 by about a point (on one machine, test acc@1 of stage 1 / 2: 78.7 / 80.0 with 1 thread,
# 77.8 / 77.8 with 2; the CPU type moves them too: README.md).
DEMO_THREADS ?= 2
DEMO_LAUNCH := $(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) --num_cpu_threads_per_process $(DEMO_THREADS)

demo: setup
	$(DEMO_LAUNCH) recipes/stage1.py --config recipes/configs/demo/stage1.yaml
	$(DEMO_LAUNCH) recipes/mine.py --config recipes/configs/demo/mine.yaml
	$(DEMO_LAUNCH) recipes/stage2_dpo.py --config recipes/configs/demo/stage2_dpo.yaml
	$(PY) recipes/compare.py "stage 1=outputs/demo-stage1/stage1_results.json" "stage 2 (DPO)=outputs/demo-stage2/stage2_results.json"

# Accuracy (every peer; angel-trl models found in outputs/<dataset>-stage{1,2}) and speed benchmarks.
# Train the NCBI models first with `make ncbi` (about 80 minutes on 2 CPU cores).
# On CPU the dense peer encodes BC5CDR-chemical's 676k MeSH names for about 1.5 hours on one thread
# (cached and resumable in benchmarks/work/): `make bench BENCH_ARGS=--no-dense` leaves it out.
BENCH_DATASETS ?= ncbi bc5cdr-disease bc5cdr-chemical
BENCH_ARGS ?=
bench: setup
	for d in $(BENCH_DATASETS); do $(PY) benchmarks/accuracy.py --dataset $$d --models-from outputs $(BENCH_ARGS) || exit 1; done
	$(PY) benchmarks/trie_bench.py --kbs medic mesh_chem synthetic_3m --out benchmarks/results/trie.json
	if [ -d outputs/ncbi-stage1 ] && [ -d outputs/ncbi-pairs ]; then \
	  $(PY) benchmarks/speed_bench.py --model_dir outputs/ncbi-stage1 --pairs outputs/ncbi-pairs/train \
	    --corpus "{data_dir}/ncbi-disease/NCBIdevelopset_corpus.txt" --corpus_format pubtator --out benchmarks/results/speed_cpu.json; \
	else echo "speed benchmark skipped: run 'make ncbi' first (needs outputs/ncbi-stage1 and outputs/ncbi-pairs)"; fi
	$(PY) benchmarks/report.py

# NCBI-disease end to end on CPU: stage 1, mining, stage 2 and its SFT-only control.
ncbi: setup
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/stage1.py --config recipes/configs/ncbi/stage1_cpu.yaml
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/mine.py --config recipes/configs/ncbi/mine.yaml
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/stage2_dpo.py --config recipes/configs/ncbi/stage2_dpo.yaml
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/stage2_dpo.py --config recipes/configs/ncbi/stage2_dpo.yaml \
	  --loss_type sft --loss_weights 1.0 --output_dir outputs/ncbi-sft-control

clean:
	rm -rf outputs .pytest_cache

# The prepared GPU check (stage 1 base + bert2bert, speed, mining, DPO; one summary): under 10 minutes on one GPU.
gpu-check: setup
	bash benchmarks/gpu_check.sh

# The same steps on a slice of the demo data on CPU (a few minutes), to check the script itself.
gpu-check-smoke: setup
	OUT_DIR=outputs/gpu-check-smoke bash benchmarks/gpu_check.sh --cpu-smoke
