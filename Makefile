# The verbs people type. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ADDR ?= 127.0.0.1:50051
# make load: where (HOST, or its alias ADDR; several comma-separated), how many, how long
HOST ?= $(ADDR)
USERS ?= 32
SPAWN_RATE ?= 8
DURATION ?= 60s
LOAD_MAX_ERROR_RATE ?= 0.01

.PHONY: help setup proto run test test-unit lint fmt bench eval-reco load k8s clean

help: ## list the verbs
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything (pinned in pyproject.toml)

proto: $(STAMP) ## regenerate libs/gen from proto/
	$(BIN)/python -m libs.protogen

run: $(STAMP) ## migrate, load demo data and serve every implemented service on 127.0.0.1:50051 (embedded)
	$(BIN)/backcrm migrate
	$(BIN)/backcrm seed --customers 200 --if-empty
	$(BIN)/backcrm serve all --address $(ADDR) --demo

test: $(STAMP) ## run the whole test suite (unit, integration, e2e)
	$(BIN)/python -m pytest

test-unit: $(STAMP) ## only the fast unit tests
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP) ## ruff, formatting check, mypy strict, stale stubs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m libs.protogen --check

fmt: $(STAMP) ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## throughput and p50/p99 per RPC against a bare grpc.aio echo server
	$(BIN)/python -m tests.load.bench

eval-reco: $(STAMP) ## offline evaluation of the recommend strategies on the Online Retail file (markdown table)
	$(BIN)/python -m services.tools.eval_reco

load: $(STAMP) ## Locust mix of every caller against a running suite (HOST USERS DURATION; TOKEN, else var/demo.token)
	BACKCRM_TOKEN="$(TOKEN)" LOAD_MAX_ERROR_RATE=$(LOAD_MAX_ERROR_RATE) $(BIN)/locust \
		-f tests/load/locustfile.py --headless --only-summary \
		-u $(USERS) -r $(SPAWN_RATE) -t $(DURATION) --host $(HOST)

k8s: ## render every kustomize overlay (validates the manifests offline)
	kubectl kustomize deploy/k8s/overlays/dev >/dev/null
	kubectl kustomize deploy/k8s/overlays/prod >/dev/null
	@echo "deploy/k8s: overlays dev and prod render"

clean: ## remove the venv, local data and caches
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
