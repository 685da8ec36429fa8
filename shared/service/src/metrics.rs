//! Prometheus text exposition of a registry the binary owns.

use prometheus::{Registry, TextEncoder};

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Encodes every metric of `registry` in the Prometheus text format (version 0.0.4).
///
/// An encoding failure (an inconsistent collector) is logged and yields an empty body.
pub fn encode(registry: &Registry) -> String {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot encode metrics");
            String::new()
        })
}
