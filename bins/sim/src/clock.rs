//! The simulator's clock: the wall clock for timestamps (so signed requests check against real time),
//! and a time scale that shortens every lifecycle duration (listenKey validity, pings, the 24-hour cut,
//! funding intervals, rate-limit windows), so tests see hours in seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Scales Binance's durations down by a whole factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    scale: u32,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Clock {
    /// A clock where every duration is `scale` times shorter (1 = real time).
    pub fn new(scale: u32) -> Self {
        Self {
            scale: scale.max(1),
        }
    }

    /// The factor.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// A Binance duration in milliseconds, scaled (at least 1 ms).
    pub fn ms(&self, binance_ms: i64) -> i64 {
        (binance_ms / i64::from(self.scale)).max(1)
    }

    /// A Binance duration, scaled, as a [`Duration`].
    pub fn duration(&self, binance_ms: i64) -> Duration {
        Duration::from_millis(u64::try_from(self.ms(binance_ms)).unwrap_or(1))
    }
}

/// A listenKey is valid this long after its creation or last keepalive (PROTOCOL §1.1).
pub const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1000;
/// The server pings every connection this often (PROTOCOL §1.3).
pub const PING_EVERY_MS: i64 = 3 * 60 * 1000;
/// A connection that has not answered a ping this long is dropped.
pub const PONG_TIMEOUT_MS: i64 = 10 * 60 * 1000;
/// A connection lives at most this long.
pub const MAX_CONNECTION_MS: i64 = 24 * 60 * 60 * 1000;
/// Funding interval of every symbol.
pub const FUNDING_INTERVAL_MS: i64 = 8 * 60 * 60 * 1000;
/// Request-weight window.
pub const WEIGHT_WINDOW_MS: i64 = 60 * 1000;
/// First IP ban after ignoring 429s (Binance: from 2 minutes to 3 days).
pub const BAN_MS: i64 = 2 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_scale_down_but_never_to_zero() {
        let c = Clock::new(3600);
        assert_eq!(c.ms(LISTEN_KEY_TTL_MS), 1000);
        assert_eq!(c.ms(1), 1);
        assert_eq!(Clock::new(0).ms(5), 5);
        assert_eq!(c.duration(MAX_CONNECTION_MS), Duration::from_secs(24));
    }
}
