# The verbs a newcomer needs. Every target sets up what it uses: a virtual environment in .venv,
# the Python packages, and (for the browser tests) Debian's Chromium.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PORT ?= 8080
USER ?= $(shell whoami)
STACK ?= ServerlessChat
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: help install browser run chat test lint typecheck unit bench soak synth deploy destroy clean

help:
	@echo "make run      start the local stack (PORT=$(PORT); FRESH=1 starts empty) and print where to open the web client"
	@echo "make test     lint, type-check and run every test"
	@echo "make chat     command-line client against the local stack (USER=alice)"
	@echo "make bench    run the benchmarks and write docs/benchmarks/"
	@echo "make soak     the long load run"
	@echo "make synth    synthesize the CloudFormation template (no AWS account needed)"
	@echo "make deploy   deploy to the AWS account in your environment"
	@echo "make destroy  delete the deployed stack"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate requirements.txt functions/requirements.txt pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the Playwright tests (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# FRESH=1 starts with an empty data directory (.local-stack/): no accounts, no messages.
run: install
	$(PY) -m local_stack --port $(PORT) $(if $(FRESH),--fresh)

chat: install
	$(BIN)/chat --user $(USER)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy functions/chat

unit: install
	$(PY) -m pytest

test: install browser lint typecheck unit

bench: install
	$(PY) -m benchmarks

soak: install
	$(PY) -m pytest tests/reliability -m soak --soak

synth: install
	npx --yes aws-cdk@2 synth --quiet

deploy: install
	npx --yes aws-cdk@2 deploy --require-approval never

destroy: install
	npx --yes aws-cdk@2 destroy --force

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache
