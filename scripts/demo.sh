#!/usr/bin/env bash
# The whole system on this machine, for a first look: installs nats-server when it is missing, builds
# every binary (release), then runs `acctmon demo` until Ctrl-C. Arguments are passed to `acctmon demo`
# (for example `--for 10m`, or `--simulate` with BINANCE_API_KEY set).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from https://rustup.rs (stable, 1.89 or newer)" >&2
  exit 1
fi
# acctmon demo starts its own nats-server (JetStream, temporary store, free loopback port).
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
      if ! command -v sudo >/dev/null 2>&1; then
        echo "nats-server is needed: run \`apt-get install nats-server\` as root" >&2
        exit 1
      fi
      sudo="sudo"
    fi
    echo "== installing nats-server"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq nats-server >/dev/null
  else
    echo "nats-server is needed: see https://docs.nats.io/running-a-nats-service/introduction/installation" >&2
    exit 1
  fi
fi

echo "== building every binary (release)"
cargo build --release --workspace --locked
echo "== acctmon demo"
exec target/release/acctmon demo "$@"
