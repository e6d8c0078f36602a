# The commands a developer and CI run. `make test` is the one test command.
.PHONY: build test lint fmt run bench fuzz

build:
	cargo build --workspace --bins

# Installs what the tests need (Debian packages as root, Python clients in
# .venv, Node.js clients in node_modules), then runs every suite.
test:
	./scripts/test.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

run:
	cargo run --release --bin spoor-all-in-one

bench:
	./scripts/bench-ingest.sh

# Each decoder's fuzz target for FUZZ_SECONDS (cargo-fuzz; RUSTC_BOOTSTRAP lets
# the stable toolchain take the sanitizer flags).
FUZZ_SECONDS ?= 10
FUZZ_TARGETS = jaeger_compact jaeger_binary zipkin_thrift zipkin_json zipkin_proto \
	otlp_proto otlp_json api_v2_json query_params traceql

fuzz:
	for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -O $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; \
	done
