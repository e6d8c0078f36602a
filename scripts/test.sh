#!/usr/bin/env bash
# The one test command (`make test`): sets up what the tests need, then runs
# every Rust test, the suites that need an outside server or broker when one
# is there, and the integration tests with real clients.
#
# On a fresh Debian or Ubuntu machine with only Rust installed it installs
# what is missing: Debian packages through apt-get when run as root
# (otherwise it stops in its first seconds and prints the command to run),
# the Python clients in a project-local virtualenv (.venv), the Node.js ones
# in integration-tests/node/node_modules.
#
# Suites that need something this script does not install say SKIPPED with
# the reason: Elasticsearch (SPOOR_ES_URL), Cassandra (SPOOR_CASSANDRA_SERVERS),
# Kafka (the tansu broker; SPOOR_REQUIRE_KAFKA=1 installs it instead).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }

# --- Debian packages: installed when root, named otherwise ---------------
debs=()
command -v cc >/dev/null || debs+=(build-essential)
command -v make >/dev/null || debs+=(make)
# OpenSSL, zstd and librdkafka are built from bundled sources: perl and make
# for OpenSSL's build, nothing from the system's -dev packages
command -v perl >/dev/null || debs+=(perl)
# the security tests make their certificates with the openssl command
command -v openssl >/dev/null || debs+=(openssl)
command -v python3 >/dev/null || debs+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || debs+=(python3-venv)
command -v node >/dev/null || debs+=(nodejs)
command -v npm >/dev/null || debs+=(npm)
[ -x /usr/bin/chromium ] || debs+=(chromium)
if [ ${#debs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing Debian packages: ${debs[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debs[@]}" >/dev/null
    else
        echo "The tests need these Debian packages first:" >&2
        echo "    sudo apt-get install ${debs[*]}" >&2
        exit 1
    fi
fi

# --- Python clients in .venv, Node.js clients in node_modules ------------
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.requirements
if ! cmp -s integration-tests/requirements.txt "$stamp"; then
    say "installing the Python test clients into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r integration-tests/requirements.txt
    cp integration-tests/requirements.txt "$stamp"
fi
node_stamp=integration-tests/node/node_modules/.package-lock.json
if [ ! -f "$node_stamp" ] || [ integration-tests/node/package-lock.json -nt "$node_stamp" ]; then
    say "installing the Node.js test clients (npm ci)"
    npm ci --prefix integration-tests/node --no-audit --no-fund --loglevel=error
fi

# --- the Kafka-protocol broker --------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tansu >/dev/null && [ "${SPOOR_REQUIRE_KAFKA:-}" = 1 ]; then
    say "installing the tansu broker (cargo install; about 10 minutes once)"
    cargo install tansu --locked --features dynostore --quiet
fi

# --- Rust --------------------------------------------------------------
say "building"
cargo build --workspace --bins
say "cargo test"
cargo test --workspace

# Suites on outside servers are #[ignore]d in a plain `cargo test`; they run
# here when their server is there.
external() { # package, what is needed, whether it is there
    if [ "$3" = yes ]; then
        say "cargo test -p $1 (on $2)"
        cargo test -p "$1" -- --ignored
    else
        echo "SKIPPED: $1 server suites: needs $2"
    fi
}
external spoor-kafka "the tansu broker (cargo install tansu --locked --features dynostore)" \
    "$(command -v tansu >/dev/null && echo yes || echo no)"
external spoor-storage-elasticsearch "an Elasticsearch or OpenSearch server named by SPOOR_ES_URL" \
    "$([ -n "${SPOOR_ES_URL:-}" ] && echo yes || echo no)"
external spoor-storage-cassandra "a Cassandra server named by SPOOR_CASSANDRA_SERVERS" \
    "$([ -n "${SPOOR_CASSANDRA_SERVERS:-}" ] && echo yes || echo no)"

# --- integration tests with real clients -----------------------------------
say "integration tests"
.venv/bin/python -m pytest -q -rs integration-tests
