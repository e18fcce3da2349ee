# `make test` is the one entry point of CI (.ci/run) and of a developer: the test tools in a git-ignored venv,
# then the gates: format, clippy, the template linters (cfn-lint, sam validate, checkov), every test.

SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := test

VENV := .venv
# Rebuilt only when tests/requirements.txt changes, so a second `make test` skips the install.
VENV_STAMP := $(VENV)/.installed-requirements
PYTHON ?= python3
# checkov pins a boto3 the SAM CLI's pin excludes: it lives in a venv of its own, inside the git-ignored one.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-requirements
# checkov does not expand Fn::ForEach: it reads the template as the SAM CLI expands it (tests/expand-template.py).
EXPANDED_TEMPLATE := $(VENV)/template.expanded.json

# The integration tests start moto from the venv and make fresh databases from DATABASE_URL.
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server

# The SAM CLI works offline once a region is set; it must never stop to ask about telemetry.
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SAM_ENV := AWS_DEFAULT_REGION=us-east-1

.PHONY: test lint fmt clippy template-lint tests venv build sizes demo bench clean-local

test: lint tests

lint: fmt clippy template-lint

fmt:
	cargo fmt --all --check

# The workspace build turns on every feature some member asks for; the second line lints infra as the functions
# build it, without the embedded backend, the event bus or the food clients.
clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p infra --lib -- -D warnings

template-lint: $(VENV_STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(VENV)/bin/sam validate --lint
	$(VENV)/bin/python tests/expand-template.py template.yaml > $(EXPANDED_TEMPLATE)
	$(CHECKOV_VENV)/bin/checkov --file $(EXPANDED_TEMPLATE) --framework cloudformation --quiet --compact --skip-download

tests: $(VENV_STAMP)
	@if cargo nextest --version >/dev/null 2>&1; then \
		set -x; DATABASE_URL='$(DATABASE_URL)' MOTO_SERVER='$(MOTO_SERVER)' cargo nextest run --workspace --profile ci; \
	else \
		echo "cargo-nextest not found: falling back to cargo test"; \
		set -x; DATABASE_URL='$(DATABASE_URL)' MOTO_SERVER='$(MOTO_SERVER)' cargo test --workspace; \
	fi

venv: $(VENV_STAMP) $(CHECKOV_STAMP)

# What `sam deploy` ships: every function cross-compiled for arm64 by cargo-lambda (with zig), from the venv.
build: $(VENV_STAMP)
	rustup target add aarch64-unknown-linux-gnu
	PATH='$(CURDIR)/$(VENV)/bin':"$$PATH" $(SAM_ENV) $(VENV)/bin/sam build
	$(MAKE) --no-print-directory sizes

# Each function's stripped arm64 binary, and a failure when one passes 8 MiB (BENCHMARKS.md): a dependency that
# brings a second crypto library, a regex engine or another function's clients shows here, not after a deploy.
MAX_FUNCTION_BYTES := 8388608
sizes:
	@set -- .aws-sam/build/*/bootstrap; [ -e "$$1" ] || { echo "no function built: run make build" >&2; exit 1; }; \
	over=0; for f; do \
		bytes=$$(stat -c %s "$$f"); printf '%10d  %s\n' "$$bytes" "$$f"; \
		if [ "$$bytes" -gt $(MAX_FUNCTION_BYTES) ]; then echo "$$f is over $(MAX_FUNCTION_BYTES) bytes" >&2; over=1; fi; \
	done; exit $$over

$(VENV_STAMP): tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/requirements.txt
	touch $@

# After the main venv (order only: its rebuild does not reinstall checkov), as `python -m venv .venv` makes .venv.
$(CHECKOV_STAMP): tests/checkov-requirements.txt | $(VENV_STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r tests/checkov-requirements.txt
	touch $@

# The whole system on this machine: SQLite, the embedded queue, an .eml outbox under .local/.
demo:
	cargo run -p jobs -- demo

# daily-summary's throughput and its floor on local PostgreSQL (BENCHMARKS.md has the other benchmarks).
bench:
	cargo run --profile perf -p jobs -- bench throughput
	cargo run --profile perf -p jobs -- bench floor

clean-local:
	rm -rf .local
