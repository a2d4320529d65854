# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv themselves.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
LOCK    := constraints.txt
DATA    ?= $(abspath ../shared/datasets)
PYTEST_ARGS ?=
# make test runs the suite in two pytest-xdist workers, a test file each at a time (its fixtures built once), one torch
# thread each (tests/conftest.py): on two cores, while one waits on a browser, a server or a subprocess, the other computes
TEST_WORKERS ?= 2

.PHONY: demo lab test install lock bench bench-quick bench-augment bench-transfer bench-attacks bench-robustness \
	bench-autoattack bench-autoencoders bench-gans bench-language bench-mae bench-contrastive bench-clip \
	bench-cli bench-lab bench-lab-panels clean

# Every install is pinned by $(LOCK) (made by `make lock`): a new release of any dependency changes nothing
# here until the lock is refreshed on purpose. pip and setuptools are pinned too, and the package is built
# without an isolated build environment, so nothing unpinned is fetched even to build it.
$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q -c $(LOCK) pip setuptools

# torch first, pinned: a bare `torch` would pull gigabytes of CUDA on a CPU machine.
$(VENV)/.torch: $(LOCK) | $(PY)
	$(PIP) install -q -c $(LOCK) torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(LOCK) $(VENV)/.torch
	$(PIP) install -q -c $(LOCK) --no-build-isolation -e '.[test,lab,lecture]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/paradigms run supervised

# The lab on the runs the demo (and every `paradigms run`) made: http://127.0.0.1:7860/
lab: install
	$(VENV)/bin/paradigms lab runs

test: install
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Writes BENCHMARKS.md (time to accuracy, throughput vs a plain PyTorch loop, matmul peak share).
bench: install
	$(PY) benchmarks/bench_supervised.py --data-dir $(DATA) --out BENCHMARKS.md

bench-quick: install
	$(PY) benchmarks/bench_supervised.py --data-dir $(DATA) --out BENCHMARKS.md --skip-cifar

# Start-up of the command line: `paradigms --help` and `--version`, wall time of a fresh process (under a minute).
bench-cli: install
	$(PY) benchmarks/bench_cli.py --out BENCHMARKS.md

# The lab under load, on loopback: 500 requests for run pages and metrics from 16 clients while a run started through
# the lab trains; p50 / p95 latency, and the run's speed against the same run with no lab (a few minutes).
bench-lab: install
	$(PY) benchmarks/bench_lab.py --out BENCHMARKS.md

# The panels, end to end on loopback: each interaction's p50 / p95, and ten GPT streams at once (a few minutes).
bench-lab-panels: install
	$(PY) benchmarks/bench_lab.py --panels --out BENCHMARKS.md

clean:
	rm -rf $(VENV) runs .pytest_cache

# Refresh the lock on purpose: a fresh environment resolves the newest releases within pyproject's ranges,
# then every version is written to $(LOCK). Run `make test` on it and say so in the commit.
lock:
	rm -rf .lock-venv
	python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip setuptools
	.lock-venv/bin/python -m pip install -q torch==2.13.0
	.lock-venv/bin/python -m pip install -q --no-build-isolation -e '.[test,lab,lecture,bench]'
	.lock-venv/bin/python -m pip install -q --no-deps torchattacks==3.5.1
	{ echo "# The lock: every package that make demo / make test installs, at the version tested. Made by make lock"; \
	  echo "# from pyproject.toml's ranges; refresh it on purpose, run make test, and say so in the commit."; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable | sed -e 's/+cpu$$//'; } > $(LOCK)
	rm -rf .lock-venv

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

# Adversarial attacks (issue 12): the papers' MNIST numbers, cat -> dog and a patch on CIFAR-10, and PGD's speed
# against torchattacks and IBM ART, benchmark-only peers (never runtime dependencies): torchattacks without its
# dependencies (they would pull torchvision, and with it a CUDA torch).
$(VENV)/.bench: $(LOCK) $(VENV)/.installed
	$(PIP) install -q -c $(LOCK) --no-build-isolation -e '.[test,lab,lecture,bench]'
	$(PIP) install -q -c $(LOCK) --no-deps torchattacks
	touch $@

bench-attacks: $(VENV)/.bench
	$(PY) benchmarks/bench_attacks.py --data-dir $(DATA) --out BENCHMARKS.md

# Adversarial training and randomized smoothing (issue 13). Hours from nothing on 2 cores (the certification
# of 500 images with n = 100,000 per sigma dominates); networks and certification tables are kept in
# runs/bench-robustness, so stop it and run it again at will (or one section: BENCH_ARGS="--sections 2").
bench-robustness: $(VENV)/.bench
	$(PY) benchmarks/bench_robustness.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)

# AutoAttack (issue 36): the MNIST PGD-trained network at eps 0.3 on the first 1,000 test images: clean, PGD-40,
# PGD-100 x 10 restarts, AutoAttack (APGD-CE, APGD-T, FAB-T at 100 iterations, Square at 5,000 queries), beside
# torchattacks' and ART's ensembles on the same network and images. The network is bench-robustness's, recalled from
# runs/bench-robustness (trained there first when it is not). Hours on 2 cores (BENCH_ARGS="--n 100" for a look).
bench-autoattack: $(VENV)/.bench
	$(PY) benchmarks/bench_autoattack.py --data-dir $(DATA) --work runs/bench-robustness --out BENCHMARKS.md $(BENCH_ARGS)

# Autoencoders and VAEs (issue 14): one-class anomaly detection and reconstruction against PCA, linear probes, the VAE's
# test NLL with k = 5,000, speed against a plain loop. About an hour from nothing; networks kept in runs/bench-autoencoders.
bench-autoencoders: install
	$(PY) benchmarks/bench_autoencoders.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)

# GANs (issue 15): classifier-FD of the minimax, non-saturating and feature-matching generators on MNIST and
# Fashion-MNIST, the semi-supervised GAN with 100 labels, speed against a plain loop. Networks kept in runs/bench-gans.
bench-gans: install
	$(PY) benchmarks/bench_gans.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)

# Language models (issue 16): our GPT beside nanoGPT itself (../shared/peers/nanoGPT, same run), BERT's masked tokens
# and the speaker task against MiniLM and scratch, general -> specialised GPT fine-tuning, MiniLM parity.
bench-language: install
	$(PY) benchmarks/bench_language.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)

# Masked autoencoders (issue 17): the MAE encoder fine-tuned against the same ViT from scratch (all labels, 10%), linear
# probes, reconstruction error against the mask ratio, speed against all patches and a plain loop. Kept in runs/bench-mae.
bench-mae: install
	$(PY) benchmarks/bench_mae.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)

# Contrastive learning (issue 18): triplet on unseen faces against pixels and eigenfaces, SimCLR and MoCo under the
# one encoder protocol (kNN + linear probe), few-label fine-tuning, speed against a plain loop. Kept in
# runs/bench-contrastive.
bench-contrastive: install
	$(PY) benchmarks/bench_contrastive.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)

# CLIP (issue 19): zero-shot accuracy against the linear probe, supervised learning and raw pixels on Fashion-MNIST and
# CIFAR-10; two held-out class names with the locked MiniLM tower against a tower from scratch; held-out templates;
# speed against a plain loop. About 50 minutes from nothing; networks kept in runs/bench-clip.
bench-clip: install
	$(PY) benchmarks/bench_clip.py --data-dir $(DATA) --out BENCHMARKS.md $(BENCH_ARGS)
