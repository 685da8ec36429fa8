# Shortcuts; each target is one command a newcomer can also run by hand.
.PHONY: test bench build fmt

## The whole test suite (what CI runs).
test:
	./scripts/test.sh

## Benchmarks of the hot paths: books apply and wire parsing.
bench:
	cargo bench -p acctmon-books --bench apply
	cargo bench -p acctmon-binance --bench parse

## Release build of every binary.
build:
	cargo build --release --workspace --locked

fmt:
	cargo fmt --all
