# Wrappers around inv/fab. Run as root on the control machine (the lab needs a Docker engine).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
LAB := SWARM_REGISTRY_CONFIG=config/lab.yaml
PYTEST_ARGS ?=

.PHONY: demo setup test unit deps dockerd venv lab-up lab-down trust-cert clean

## demo: install what is missing, start the 3-node lab swarm, setup (with login), smoke-test, catalog
DEMO_PW := .lab/demo-password
demo: deps dockerd venv
	$(BIN)/inv lab.up
	@test -s $(DEMO_PW) || (umask 077; $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))' > $(DEMO_PW))
	$(LAB) $(BIN)/inv users.add lenain --password-stdin < $(DEMO_PW)
	$(LAB) $(BIN)/inv setup --password-stdin < $(DEMO_PW)
	$(LAB) $(BIN)/inv smoke-test --keep --password-stdin < $(DEMO_PW)
	$(LAB) $(BIN)/inv catalog --tags --password-stdin < $(DEMO_PW)
	@echo
	@echo "The registry runs on the lab at https://registry.swarm-lab.test:5000 (user lenain, password in $(DEMO_PW), 0600)."
	@echo "Every node trusts it and is logged in (credential in pass). From a node:"
	@echo "  docker exec -it swarm-registry-lab-node2 docker pull registry.swarm-lab.test:5000/swarm-registry-smoke:TAG"
	@echo "Run it again (reports no change):  $(LAB) $(BIN)/inv setup --password-stdin < $(DEMO_PW)"
	@echo "State of every node:               $(LAB) $(BIN)/inv status"
	@echo "Remove the registry (data kept):   $(LAB) $(BIN)/inv teardown"
	@echo "Remove the whole lab:              make lab-down"

## test: install what is missing, start dockerd, run every test (unit, sshd hosts, lab)
test: deps dockerd venv
	$(BIN)/python -m pytest -q -rs $(PYTEST_ARGS) tests

## unit: the pure-core tests only (no root, no docker)
unit: venv
	$(BIN)/python -m pytest -q tests/unit

deps:
	bash files/host/install-deps.sh

dockerd:
	bash files/host/start-dockerd.sh

## venv: .venv from Debian's python3 (the one python3-venv is for; what a fresh Debian's python3 is), made
## again when requirements.txt or the interpreter changes; PYTHON=... chooses another
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
venv:
	@bash files/host/make-venv.sh $(PYTHON) $(VENV) requirements.txt

lab-up: deps dockerd venv
	$(BIN)/inv lab.up

lab-down: venv
	$(BIN)/inv lab.down

trust-cert: venv
	$(LAB) $(BIN)/fab -H nodes trust-cert

setup: venv
	$(LAB) $(BIN)/inv setup

clean:
	rm -rf $(VENV) .pytest_cache

## bench: trust-cert on 8-128 sshd hosts vs. the OpenSSH floors, minimal Fabric, Ansible and pyinfra (BENCH_ARGS=--recipe adds the whole recipe on lab swarms, --quick is short); writes bench/RESULTS.md and results.svg
.PHONY: bench
BENCH_ARGS ?=
bench: venv
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)
