//! acctmon on NATS JetStream: everything the binaries share about the bus.
//!
//! - [`subject`]: the subjects and KV keys of DESIGN §3, the partition function (FNV-1a as nats-server's
//!   `{{partition}}` mapping) and the one escaping rule for symbols.
//! - [`envelope`]: the MessagePack payload of events (named fields, `schema` tag) and the deterministic
//!   `Nats-Msg-Id` of every event.
//! - [`topology`]: streams, KV buckets and consumers, declared once and created idempotently, working on
//!   nats-server 2.9.10 and 2.10+.
//! - [`publish`]: pipelined publishing with bounded acks in flight, retried in order with the same ids.
//! - [`kv`]: typed KV state with compare-and-set.
//! - [`link`]: the connection of an ordered flow, replaced rather than reconnected when it drops.
//! - [`connect`](mod@connect): connection options (URLs, user/password, token, nkey, creds, TLS),
//!   reconnecting forever, connection state as a readiness check.
//!
//! This crate does not decide what to publish or how to apply it; the books stay out of it.

pub mod connect;
pub mod envelope;
pub mod kv;
pub mod link;
pub mod pnl;
pub mod publish;
pub mod subject;
pub mod topology;

pub use connect::{NatsConfig, connect};
pub use envelope::{Envelope, msg_id};
pub use kv::{KvError, KvState, Versioned};
pub use link::Link;
pub use publish::{Outgoing, PublishMetrics, Publisher};
pub use topology::{EnsureReport, Topology};
