# nixecs — the two commands a newcomer needs are `make demo` and `make test`.
# The Makefile creates its own virtual environment in .venv (Python >= 3.11).

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT := out

.PHONY: demo test lint typecheck bench skips clean help

help:
	@echo "make demo   validate and render examples/fleet.yml into out/, simulate a boot, deploy locally"
	@echo "make test   the whole test suite (lint, types, pytest incl. Nix, moto and cfn-lint tests)"
	@echo "make bench  performance figures (the README's Performance table)"
	@echo "make skips  (root) the test suite with the README's system tools hidden: how many tests skip"

$(STAMP): tools/pyproject.toml
	@test -n "$(PYTHON)" || { echo "need Python >= 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'tools[test]'
	@touch $@

demo: $(STAMP)
	@$(BIN)/python tools/demo.py --out $(OUT)

lint: $(STAMP)
	$(BIN)/ruff check tools apps
	$(BIN)/ruff format --check tools apps

typecheck: $(STAMP)
	cd tools && ../$(BIN)/mypy
	cd apps/bananas && ../../$(BIN)/mypy

test: $(STAMP) lint typecheck
	# The example application's own tests (its package's check phase runs them too).
	cd apps/bananas && PYTHONPATH=src ../../$(BIN)/pytest -q -p no:cacheprovider
	# Last, so the run ends with its count of tests a missing system tool skipped.
	cd tools && ../$(BIN)/pytest -n 2 -q

bench: $(STAMP)
	@$(BIN)/python tools/bench.py

# Not part of `make test`: re-measures the count the README quotes (a private mount
# namespace without nix-bin, skopeo, docker-registry, iptables, nftables, iproute2,
# conntrack and systemd; CI unset, so their tests skip instead of failing).
skips: $(STAMP)
	@$(BIN)/python tools/measure_skips.py

clean:
	rm -rf $(OUT) $(VENV)
