# Shortcuts; each target is one command a newcomer can also run by hand.
.PHONY: test bench build fmt sim demo

## The whole test suite (what CI runs).
test:
	./scripts/test.sh

## Benchmarks of the hot paths: books apply, wire parsing, event decoding, the simulator's firehose, ingest against raw JetStream,
## the whole pipeline (burst rate, P&L latency, the processor's memory).
bench:
	cargo bench -p acctmon-books --bench apply
	cargo bench -p acctmon-binance --bench parse
	cargo bench -p acctmon-bus --bench envelope
	cargo bench -p acctmon-sim --bench firehose
	cargo bench -p acctmon-ingest --bench throughput
	cargo bench -p acctmon-processor --bench pipeline

## Release build of every binary.
build:
	cargo build --release --workspace --locked

fmt:
	cargo fmt --all

## The exchange simulator with generated activity on three accounts (Ctrl-C stops it).
sim:
	cargo run --release -p acctmon-sim -- --listen 127.0.0.1:8090

## The whole system on this machine: installs nats-server when missing, builds every binary, runs
## `acctmon demo` (nats-server, the simulator, ingest, the processor) until Ctrl-C; `make demo ARGS="--for 5m"`.
demo:
	./scripts/demo.sh $(ARGS)
