# Secret Cascade: the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := infra/local/.venv
CORPUS ?= ../shared/corpus/cfn-templates

.PHONY: help demo test bootstrap tools fmt-check clippy unit-and-e2e launcher-tests sam-build sam-deploy-test conformance lint fuzz bench up down

help:
	@echo "make demo    plan a secret change against a seeded local AWS stack (moto)"
	@echo "make test    every check: fmt, clippy, unit, integration and end-to-end tests, launcher tests,"
	@echo "             conformance, the SAM template / state machine lint (infra/tools/lint), and last"
	@echo "             the fuzz targets (make fuzz)"
	@echo "make fuzz    fuzz the template reader, the dynamic-reference parser and the ticket parser"
	@echo "             (cargo-fuzz, FUZZ_SECONDS per target, default 60; infra/tools/fuzz)"
	@echo "make bench   benchmarks (planning, discovery over 1,000 stacks)"
	@echo "make sam-build        sam build (ARCH=x86_64 for x86_64; arm64, the template's default, otherwise)"
	@echo "make sam-deploy-test  sam build, then sam deploy onto a local stack and one batch through it"
	@echo "make up / make down   start / stop the local AWS stack by hand"

bootstrap:
	@infra/local/bootstrap

demo: bootstrap
	@infra/local/demo

test: bootstrap fmt-check clippy unit-and-e2e launcher-tests sam-deploy-test conformance lint fuzz

tools:
	@infra/tools/bootstrap

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-and-e2e:
	$(CARGO) test --workspace --locked

launcher-tests:
	$(VENV)/bin/python -m pytest infra/local/tests -q

# sam build exactly as users run it (samconfig.toml: into target/sam/build); ARCH picks the
# architecture (the template's default is arm64).
ARCH ?=
sam-build: tools
	@start=$$(date +%s); \
	PATH="$(CURDIR)/infra/tools/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build --region us-east-1 \
		$(if $(ARCH),--parameter-overrides Architecture=$(ARCH)) && \
	echo "sam build: $$(( $$(date +%s) - start )) s, bootstrap $$(stat -c %s target/sam/build/GatekeeperFunction/bootstrap) bytes"

# The built artifact deployed with sam deploy onto a local stack (IAM enforced), then a batch.
sam-deploy-test: sam-build bootstrap
	CASCADE_SAM_ARCHITECTURE=$(ARCH) $(CARGO) test --locked -p cascade-tests --test sam_deploy_e2e -- --ignored

conformance:
	@if [ -d "$(CORPUS)" ]; then \
		$(CARGO) run -q --locked -p cascade-core --example conformance -- "$(CORPUS)"; \
	else \
		echo "conformance: skipped ($(CORPUS) not found)"; \
	fi
	@CARGO="$(CARGO)" infra/tools/real-templates

lint:
	infra/tools/lint

# cargo-fuzz on stable (--sanitizer none), each target for FUZZ_SECONDS; fails on a crash.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO="$(CARGO)" infra/tools/fuzz

bench: bootstrap
	$(CARGO) bench -p cascade-core --bench planning
	$(CARGO) run -q --release --locked -p cascade-tests --bin bench-discovery
	$(CARGO) run -q --release --locked -p cascade-tests --bin bench-run
	$(CARGO) run -q --release --locked -p cascade-tests --bin bench-pipeline
	$(CARGO) build -q --release --locked -p cascade-lambda
	$(CARGO) run -q --release --locked -p cascade-tests --bin bench-cold-start

up: bootstrap
	@infra/local/up

down:
	@infra/local/down
