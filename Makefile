# The commands a developer and CI run. `make test` is the one test command.
PYTHON ?= python3

.PHONY: build test lint fmt run bench

build:
	cargo build --workspace --bins

test: build
	cargo test --workspace
	$(PYTHON) -m pytest -q integration-tests

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

run:
	cargo run --release --bin spoor-all-in-one

bench:
	./scripts/bench-ingest.sh
