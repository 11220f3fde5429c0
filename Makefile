# angel-trl: `make demo` and `make test` set everything up themselves on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
ACCELERATE_CONFIG ?= recipes/accelerate/cpu.yaml

.PHONY: setup test test-fast demo demo-data bench clean

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

demo: setup
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/stage1.py --config recipes/configs/demo.yaml
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/mine.py --config recipes/configs/demo_mine.yaml
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) recipes/stage2_dpo.py --config recipes/configs/demo_dpo.yaml
	$(PY) recipes/compare.py "stage 1=outputs/demo-stage1/stage1_results.json" "stage 2 (DPO)=outputs/demo-stage2/stage2_results.json"

clean:
	rm -rf outputs .pytest_cache
