# Wrappers around inv/fab. Run as root on the control machine (the lab needs a Docker engine).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
LAB := SWARM_REGISTRY_CONFIG=config/lab.yaml
PYTEST_ARGS ?=

.PHONY: demo test unit deps dockerd venv lab-up lab-down trust-cert clean

## demo: install what is missing, start the lab cluster and make every node trust the registry
demo: deps dockerd venv
	$(BIN)/inv lab.up
	$(LAB) $(BIN)/inv certs
	$(LAB) $(BIN)/fab -H nodes trust-cert
	@echo
	@echo "Lab is up. Try:  $(LAB) $(BIN)/inv --list"
	@echo "Tear it down:    make lab-down"

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

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

lab-up: deps dockerd venv
	$(BIN)/inv lab.up

lab-down: venv
	$(BIN)/inv lab.down

trust-cert: venv
	$(LAB) $(BIN)/fab -H nodes trust-cert

clean:
	rm -rf $(VENV) .pytest_cache
