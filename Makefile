# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv themselves.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
DATA    ?= $(abspath ../shared/datasets)
PYTEST_ARGS ?=

.PHONY: demo test install bench bench-quick bench-augment bench-transfer clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, pinned: a bare `torch` would pull gigabytes of CUDA on a CPU machine.
$(VENV)/.torch: | $(PY)
	$(PIP) install -q torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/paradigms run supervised

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Writes BENCHMARKS.md (time to accuracy, throughput vs a plain PyTorch loop, matmul peak share).
bench: install
	$(PY) benchmarks/bench_supervised.py --data-dir $(DATA) --out BENCHMARKS.md

bench-quick: install
	$(PY) benchmarks/bench_supervised.py --data-dir $(DATA) --out BENCHMARKS.md --skip-cifar

clean:
	rm -rf $(VENV) runs .pytest_cache

# Augmentation study (issue 3): Fashion-MNIST and low-data CIFAR-10, 5 policies x 3 seeds; CIFAR-10 at the papers' 200 epochs
# for standard, + cutout, + mixup, 5 seeds (about 20 minutes a run here).
# Hours from nothing; finished runs are kept in runs/bench-augment, so stop it and run it again at will.
bench-augment: install
	$(PY) benchmarks/bench_augment.py --data-dir $(DATA) --out BENCHMARKS.md

# Yosinski et al. 2014 on MNIST halves, few labels, probe vs fine-tune
# (CIFAR-10 halves: make bench-transfer DATASET=cifar10 TRANSFER_ARGS="--seeds 1 --few-seeds 3")
DATASET ?= mnist
TRANSFER_ARGS ?= --seeds 2 --few-seeds 3 --epochs 2
bench-transfer: install
	$(PY) benchmarks/bench_transfer.py --data-dir $(DATA) --dataset $(DATASET) $(TRANSFER_ARGS) --out BENCHMARKS.md
