//! What every acctmon binary shares: the flags every service takes and `main`'s body (`process`),
//! layered configuration with typed secrets, tracing setup,
//! Prometheus text encoding, the admin HTTP server (`/metrics`, `/healthz`, `/readyz`), named
//! readiness checks and one shutdown model (first SIGINT/SIGTERM cancels a token, the second exits).
//!
//! It owns process plumbing only: it must not know about Binance, accounts, money or NATS
//! subjects, must not register metrics of its own, and must never log or print a secret value.

pub mod admin;
pub mod config;
pub mod health;
pub mod metrics;
pub mod process;
pub mod shutdown;
pub mod telemetry;

/// Serde adapters for durations written like `"30s"`:
/// `#[serde(with = "acctmon_service::humantime_serde")]`.
pub use humantime_serde;

/// The allocator every binary uses, `#[global_allocator] static ALLOCATOR: Allocator = Allocator;`:
/// the services allocate and free a small buffer or two per event, which glibc's malloc made a quarter
/// of ingest's CPU under load. It is built without transparent huge pages (the workspace's `no_thp`):
/// with them every 2 MiB page it touched counted whole in the resident set.
pub use mimalloc::MiMalloc as Allocator;
