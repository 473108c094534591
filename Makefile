# lra-snn: `make help` lists the targets. Every target that needs Python creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch on this machine; on a GPU machine e.g. TORCH="torch==2.11.0" (or a CUDA index).
TORCH ?= torch==2.13.0
EXTRAS ?= dev
# The exact versions of every other package the tests last passed with (pip constraints; `make lock` renews it;
# LOCK= installs without it, e.g. on a Python other than 3.11, for which it was written).
LOCK ?= requirements.lock

# Sweep selection for lra-all / smoke (comma-separated, Hydra multirun syntax; all: every model or task the
# configs define, listed by `python -m lra_snn.cli.zoo models|tasks` once the venv exists).
ALL_MODELS = $(shell $(PY) -m lra_snn.cli.zoo models)
ALL_TASKS = $(shell $(PY) -m lra_snn.cli.zoo tasks)
PROFILE ?= mini
MODELS ?= all
TASKS ?= listops
SEEDS ?= 1
# Where `make lra-all` records its runs and board: a git-ignored folder, so a fresh clone trains every
# cell and never touches the shipped runs (results/reference-runs, read-only); its board compares each cell with them.
RESULTS_DIR ?= $(CURDIR)/results/local
# Local parallel cells (Hydra's joblib launcher), each on THREADS torch threads.
JOBS ?= 2
SWEEP_MODELS = $(if $(filter all,$(MODELS)),$(ALL_MODELS),$(MODELS))
SWEEP_TASKS = $(if $(filter all,$(TASKS)),$(ALL_TASKS),$(TASKS))
ARGS ?=
# torch CPU threads per run (1 is fastest for these small models on a shared 2-core machine; 0 = torch default)
THREADS ?= 1
# glibc malloc keeps freed memory for reuse instead of unmapping it, so large tensors do not page-fault anew
# on every allocation (docs/kernels.md, "Allocator"); MALLOC= turns it off
MALLOC ?= MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736

.DEFAULT_GOAL := help
.PHONY: help venv lint format test test-fast lra-all smoke leaderboard reference-manifest plots figures wandb-sync bench bench-gpu bench-data gpu-job wheels clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=$(PROFILE) MODELS=$(MODELS) TASKS=$(TASKS) SEEDS=$(SEEDS) JOBS=$(JOBS) THREADS=$(THREADS) TORCH=$(TORCH) ARGS='...'"

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]" $(if $(LOCK),-c $(LOCK))
	@# SpikingJelly's PSN family, the reference our PSN tests compare against (its declared deps are
	@# not needed for that module, so no-deps; the tests skip, saying why, if this install fails).
	-$(PY) -m pip install --quiet --no-deps "spikingjelly==2.0.0" "loguru>=0.7"
	@touch $@

venv: $(VENV)/.installed ## create the project virtualenv (.venv) once, at the versions of requirements.lock; TORCH=... picks the torch build

.PHONY: lock
lock: ## renew requirements.lock: the newest versions pyproject.toml allows, resolved in a scratch venv (then make venv test)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet "$(TORCH)" && .venv-lock/bin/python -m pip install --quiet ".[$(EXTRAS)]"
	{ echo "# pip constraints: the exact versions make venv installs (Python 3.11; torch is TORCH in the Makefile)."; \
	  echo "# Renewed by make lock; commit it once make test passes on it."; \
	  .venv-lock/bin/python -m pip freeze --all | grep -v -i -E '^(torch|lra-snn|pip|setuptools|wheel)[=@ ]'; } > $(LOCK)
	rm -rf .venv-lock

lint: venv ## ruff (lint + format check) over the repository, mypy over the package, the import floors (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: venv ## format the repository and apply ruff's safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: venv ## run the whole test suite (slow tests included)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test-fast: venv ## run the test suite without the tests marked slow
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow"

# Mutation testing (mutmut, [tool.mutmut] in pyproject.toml): the whole package, in parts (PART=results; the parts:
# python scripts/mutation_report.py --parts), each recorded under results/mutation/; or MUTANTS="<name globs>".
MUTANTS ?=
PART ?=
.PHONY: mutate
mutate: venv ## mutation testing, one part of the package at a time (PART=results -> results/mutation/results.json; MUTANTS="lra_snn.optim*" picks mutants)
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run $(if $(PART),$(shell $(PY) scripts/mutation_report.py --glob $(PART)),$(foreach m,$(MUTANTS),'$(m)'))
	$(if $(PART),$(PY) scripts/mutation_report.py --part $(PART),$(VENV)/bin/mutmut results)

lra-all: venv ## the main job: multirun over MODELS x TASKS x SEEDS at PROFILE, then print the leaderboard
	$(MALLOC) $(PY) -m lra_snn.train -m model=$(SWEEP_MODELS) data=$(SWEEP_TASKS) seed=$(SEEDS) profile=$(PROFILE) \
		hydra/launcher=parallel hydra.launcher.n_jobs=$(JOBS) torch_threads=$(THREADS) \
		trainer.enable_progress_bar=false paths.results_dir=$(RESULTS_DIR) $(ARGS)
	$(PY) -m lra_snn.cli.leaderboard --results $(RESULTS_DIR)/runs --out $(RESULTS_DIR) --reference-runs results/reference-runs

smoke: venv ## CI smoke: every model on every task at the tiny profile, one seed, then the leaderboard
	$(PY) -m lra_snn.train -m model=$(SWEEP_MODELS) data=$(SWEEP_TASKS) seed=1 profile=tiny \
		torch_threads=$(THREADS) trainer.enable_progress_bar=false paths.results_dir=$(CURDIR)/results/smoke $(ARGS)
	$(PY) -m lra_snn.cli.leaderboard --results results/smoke/runs --out results/smoke

leaderboard: venv ## rebuild the shipped board results/leaderboard.md and .csv from results/reference-runs (byte-identical)
	$(PY) -m lra_snn.cli.leaderboard --results results/reference-runs --out results

reference-manifest: venv ## record the digests of the shipped runs (results/reference-runs.manifest.json), after replacing them on purpose
	$(PY) -m lra_snn.cli.leaderboard --write-manifest

plots: venv ## draw your runs (results/local/runs) into results/local/figures/ (git-ignored), PNG + PDF: accuracy vs energy and training curves per task, bench speedup vs L (RUNS=, FIGURES= pick other folders)
	$(PY) -m lra_snn.cli.plots --results $(or $(RUNS),results/local/runs) --bench results/bench --out $(or $(FIGURES),results/local/figures)

figures: venv ## redraw the figures the README embeds, results/figures/ and its figures.json, from results/reference-runs and results/bench
	$(PY) -m lra_snn.cli.plots --results results/reference-runs --bench results/bench --out results/figures

.PHONY: eval extrapolate
eval: venv ## evaluate a checkpoint on its stored config: make eval CKPT=<best.ckpt> ARGS="split=val mode=stream data.max_length=..."
	@test -n "$(CKPT)" || { echo "make eval needs CKPT=<path to a checkpoint>, e.g. outputs/runs/<cell>/checkpoints/best.ckpt"; exit 2; }
	$(PY) -m lra_snn.cli.eval ckpt_path=$(CKPT) $(ARGS)

extrapolate: venv ## train (or reuse) causal mini ListOps S4D + LIF-SSM, evaluate at 1x-8x length, parallel and streaming -> results/extrapolation/
	OMP_NUM_THREADS=$(THREADS) $(PY) -m lra_snn.cli.extrapolate --threads $(THREADS) $(ARGS)

wandb-sync: venv ## upload the offline wandb runs under outputs/ (run `.venv/bin/wandb login` once first)
	find outputs -type d -name 'offline-run-*' -print0 | xargs -0 -r $(VENV)/bin/wandb sync

.PHONY: wandb-export
wandb-export: venv ## every recorded run (shipped and results/local/runs) as offline wandb runs -> outputs/wandb-export/ (then make wandb-sync)
	$(PY) -m lra_snn.cli.export_wandb $(ARGS)

bench: venv ## neuron speed benchmark (sequential vs parallel) on this CPU -> results/bench/
	$(MALLOC) $(PY) -m lra_snn.cli.bench --threads $(THREADS) $(ARGS)

bench-gpu: venv ## GPU job (on a CUDA machine): full-size kernel checks, copy bandwidth, primitive + neuron timings
	OMP_NUM_THREADS=1 $(PY) scripts/bench_gpu.py --out $${OUT:-results/bench} $(ARGS)

bench-data: venv ## data benchmark: first build, warm loading, peak RSS per task -> results/bench/data_<LABEL>_<stamp>.json
	$(PY) scripts/bench_data.py --label $(or $(LABEL),run) $(ARGS)

.PHONY: train-sdn
train-sdn: venv ## train the SDN neuron's membrane predictor once (~25 min, one thread) -> lra_snn/neurons/sdn_weights/, results/sdn/
	$(PY) -m lra_snn.cli.train_sdn $(ARGS)

gpu-job: venv ## the whole GPU job: full-size kernel tests, bench-gpu, Triton-vs-PyTorch training parity
	PY=$(PY) bash scripts/gpu_job.sh

wheels: venv ## the wheels a bare GPU machine lacks (hydra-core, omegaconf, antlr4, pydantic; pydantic-core built for GPU_PYTHON) -> wheels/
	rm -rf wheels && mkdir -p wheels
	$(PY) -m pip download --quiet --no-deps -d wheels $(call pinned,hydra-core) $(call pinned,omegaconf) \
		$(call pinned,pydantic) $(call pinned,annotated-types) $(call pinned,typing-inspection)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version $(GPU_PYTHON) \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d wheels $(call pinned,pydantic-core)
	$(PY) -m pip wheel --quiet --no-deps -w wheels "antlr4-python3-runtime==4.9.3"
	ls -l wheels

# "name==<the version in .venv>", so the GPU machine runs what the tests here ran
pinned = "$(1)==$$($(PY) -c 'from importlib.metadata import version; print(version("$(1)"))')"
GPU_PYTHON ?= 3.12  # the GPU machine's Python (the compiled pydantic-core wheel must match it)

.PHONY: data-lra
data-lra: venv ## the official LRA release (lra_release.gz, ~7.7 GB; SHA-256 pinned at first download) -> data/lra_release/ (ListOps, Retrieval, Pathfinder, Path-X)
	$(PY) -m lra_snn.cli.lra_release --data-dir $(CURDIR)/data

data-%: venv ## download / generate and cache one task at PROFILE: data-listops, data-text, ... (ARGS="data.source=hub": from the Hub)
	$(PY) -m lra_snn.cli.prepare data=$* profile=$(PROFILE) hydra.run.dir=outputs/prepare/$* $(ARGS)

clean: ## remove run outputs and caches (keeps .venv, data/ and results/)
	rm -rf outputs multirun .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

.PHONY: bench-startup
bench-startup: venv ## how long lra-train takes to answer (--help, --cfg, completion, a refused override) beside a bare Hydra app -> results/bench/startup_*
	$(PY) benchmarks/startup.py $(ARGS)

.PHONY: profile-step
profile-step: venv ## where a mini training step's time goes per zoo model (S4D, neuron, linear, GLU, optimizer, framework) -> results/bench/profile_step_*
	$(MALLOC) $(PY) benchmarks/profile_step.py --threads $(THREADS) $(ARGS)

.PHONY: bench-peers
bench-peers: venv ## side by side on this CPU: our neurons vs SpikingJelly's, S4D vs a paper S4D, Lightning vs a plain loop -> results/bench/peers_*
	OMP_NUM_THREADS=1 $(MALLOC) $(PY) benchmarks/peers.py --threads $(THREADS) $(ARGS)
