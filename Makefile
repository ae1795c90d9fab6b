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

.PHONY: help install install-dev lock lock-check browser run chat test lint typecheck unit bench mutate soak verify synth deploy destroy clean

help:
	@echo "make run      start the local stack (PORT=$(PORT); FRESH=1 starts empty) and print where to open the web client"
	@echo "make test     lint, type-check and run every test"
	@echo "make chat     command-line client against the local stack (USER=alice)"
	@echo "make bench    run the benchmarks and write docs/benchmarks/"
	@echo "make mutate  mutation testing of the pure core (how many mutants the tests kill)"
	@echo "make soak     the long load run"
	@echo "make verify   check a stack end to end as a client: a local one it starts and stops,"
	@echo "              or a deployed one with STACK=$(STACK) [REGION=eu-west-1]"
	@echo "make lock     re-resolve the locks after editing a requirements .txt file"
	@echo "make synth    synthesize the CloudFormation template (no AWS account needed)"
	@echo "make deploy   deploy to the AWS account in your environment (REGION=eu-west-1) and print the URLs"
	@echo "make destroy  delete the deployed stack (REGION=eu-west-1)"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Two environments in one venv: what running and deploying need, and on top of it what testing and
# benchmarking add. Both come from locks with hashes (`make lock` writes them from the .txt inputs).
$(VENV)/.installed: $(BIN)/activate requirements.lock pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Re-resolve the locks after editing requirements*.txt or functions/requirements.txt.
lock: install-dev
	$(PY) -m infra.locks

lock-check: install-dev
	$(PY) -m infra.locks --check

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

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy functions/chat tests/functions/fakes.py tests/functions/test_service.py

unit: install-dev
	$(PY) -m pytest

test: install-dev browser lock-check lint typecheck unit

bench: install-dev
	$(PY) -m benchmarks

# Mutation testing of the pure core (about half an hour; not part of `make test`).
mutate: install-dev
	$(PY) -m mutation

soak: install-dev
	$(PY) -m pytest tests/reliability -m soak --soak

# Without STACK on the command line (or in the environment): a local stack, started and stopped.
verify: install
ifneq ($(filter command line environment,$(origin STACK)),)
	$(PY) -m conformance --stack $(STACK) $(if $(REGION),--region $(REGION))
else
	$(PY) -m conformance --local
endif

synth: install
	npx --yes aws-cdk@2 synth --quiet

# Checks credentials, bootstraps the account and region if needed, deploys, prints the URLs.
# REGION=eu-west-1 picks the region; CDK_ARGS="-c webClient=false" passes options to cdk deploy.
deploy: install
	@$(PY) -m infra.deploy deploy $(if $(REGION),--region $(REGION)) $(if $(CDK_ARGS),-- $(CDK_ARGS))

destroy: install
	@$(PY) -m infra.deploy destroy $(if $(REGION),--region $(REGION))

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache
