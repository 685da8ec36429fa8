#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: formatting, lints, documentation, every test of the
# workspace.
# Installs what it needs when it is missing; starts no server it does not own.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from https://rustup.rs (stable, 1.89 or newer)" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# The wire-compatibility test runs Binance's own Python connector against the simulator.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing python3 with venv"
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
  else
    echo "python3 with the venv module is needed (Debian: apt-get install python3 python3-venv)" >&2
    exit 1
  fi
fi
# Integration tests start their own nats-server (JetStream, temp store, free loopback port).
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing nats-server"
    apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
  else
    echo "nats-server is needed (Debian: apt-get install nats-server)" >&2
    exit 1
  fi
fi

echo "== Python client of the compatibility test"
./scripts/python-env.sh >/dev/null

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc (broken links in the documentation are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== the pure crates stay pure (no IO or async runtime below the books)"
for crate in acctmon-domain acctmon-books; do
  impure=$(cargo tree --locked -e normal -p "$crate" --prefix none \
    | grep -E '^(tokio|async-nats|sqlx|tonic|axum|reqwest|hyper) ' | sort -u || true)
  if [ -n "$impure" ]; then
    echo "$crate must stay pure but depends on: $impure" >&2
    exit 1
  fi
done
echo "== cargo test"
cargo test --workspace --locked
