# mediagate: `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo

.DEFAULT_GOAL := help

##@ Start here

.PHONY: run
run: deps ## Build, then start nginx (http://127.0.0.1:8080) in front of mediagate on the embedded store
	@scripts/run.sh

.PHONY: test
test: deps clients tools ## Run every test: unit, property, store and storage contracts, end-to-end through nginx (local and S3 storage), real Express/Django/PyJWT clients
	$(CARGO) test --all-targets -- --test-threads=4
	cd clients/python && MEDIAGATE_BIN=$(CURDIR)/target/debug/mediagate ../../target/python-client-venv/bin/pytest -q

##@ Development

.PHONY: deps
deps: ## Install nginx and redis-server if missing (apt, as root), or say what to run
	@scripts/deps.sh

.PHONY: clients
clients: ## Install the pinned Express, Django and PyJWT test clients (npm ci, a Python venv)
	@scripts/clients.sh

.PHONY: tools
tools: ## Install the pinned S3 test server (s3s-fs) into target/tools
	@scripts/tools.sh

.PHONY: build
build: ## Build the release binary
	$(CARGO) build --release

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: lint
lint: clients ## cargo fmt --check, clippy with warnings as errors, mypy --strict on the Python package
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	cd clients/python && ../../target/python-client-venv/bin/mypy

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_SECONDS (default 60); needs cargo-fuzz
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

.PHONY: helm-lint
helm-lint: clients ## Lint and render the Helm chart offline and validate every manifest against the Kubernetes schemas
	target/clients-venv/bin/python tests/clients/helm/check_chart.py check helm/mediagate

.PHONY: bench
bench: deps tools ## Release build, then plain nginx vs the auth_request stub vs mediagate with wrk; prints one table (BENCH_SECONDS, BENCH_ROUNDS)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
	$(CARGO) build --release --bin mediagate --example embedded_scale --example http_floor --example store_floor
	python3 bench/bench.py --seconds $(or $(BENCH_SECONDS),5) --rounds $(or $(BENCH_ROUNDS),3)
	python3 bench/snippet_cost.py

.PHONY: soak
soak: deps ## Run nginx + mediagate + Redis for SOAK_SECONDS (default 300) under mixed load with Redis restarts, and report
	SOAK_SECONDS=$(or $(SOAK_SECONDS),300) $(CARGO) test --release --test e2e soak -- --ignored --nocapture --test-threads=1

.PHONY: migrate
migrate: ## Apply pending keyspace migrations to the configured store
	$(CARGO) run --release -- migrate

.PHONY: nginx-config
nginx-config: ## Print the complete nginx.conf for the current configuration
	@$(CARGO) run --quiet -- nginx-config

.PHONY: clean
clean: ## Remove build output and the local state of `make run` (var/)
	$(CARGO) clean
	rm -rf var

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)
