//! Request weights and injected REST faults, applied to every `/fapi` request before its handler.
//!
//! Weights follow PROTOCOL §4.4 and are counted per window of one (scaled) minute; every answer carries
//! `X-MBX-USED-WEIGHT-1M`. Past the limit the answer is 429 (`-1003`) with `Retry-After` (seconds to the
//! end of the window); a client that keeps sending after [`BAN_AFTER_429`] refusals in one window is banned
//! with 418 and `Retry-After` for two (scaled) minutes, doubling with each further ban.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::clock::{BAN_MS, Clock, WEIGHT_WINDOW_MS, now_ms};
use crate::rest::{ApiError, Shared, lock};

/// Refusals with 429 in one window before the client is banned with 418.
pub const BAN_AFTER_429: u32 = 5;

/// Weight of a request (PROTOCOL §4.4; orders and listenKey calls weigh 1).
pub fn weight(method: &Method, path: &str, query: &str) -> u32 {
    let has_symbol = query.split('&').any(|p| p.starts_with("symbol="));
    match path {
        "/fapi/v2/account" | "/fapi/v2/balance" | "/fapi/v2/positionRisk" => 5,
        "/fapi/v3/account" | "/fapi/v3/balance" | "/fapi/v3/positionRisk" => 5,
        "/fapi/v1/userTrades" => 5,
        "/fapi/v1/income" => 30,
        "/fapi/v1/positionSide/dual" if method == Method::GET => 30,
        "/fapi/v1/premiumIndex" if !has_symbol => 10,
        "/fapi/v1/openOrders" if !has_symbol => 40,
        _ => 1,
    }
}

/// The weight used in the current window and the bans, as Binance counts them per IP.
#[derive(Debug, Clone, Default)]
pub struct WeightMeter {
    /// Weight allowed per window.
    pub limit: u32,
    window_start: i64,
    used: u32,
    refused: u32,
    banned_until: i64,
    bans: u32,
}

/// Why a request was refused by the meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limited {
    /// Over the limit: 429.
    TooMany {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// Banned: 418.
    Banned {
        /// Seconds until the ban ends.
        retry_after: u64,
    },
}

fn secs_until(now: i64, until: i64) -> u64 {
    u64::try_from((until - now).max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

impl WeightMeter {
    /// A meter allowing `limit` weight per window.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Weight used in the current window.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Charges a request of `weight` at `now`.
    pub fn charge(&mut self, clock: &Clock, now: i64, weight: u32) -> Result<u32, Limited> {
        if now < self.banned_until {
            return Err(Limited::Banned {
                retry_after: secs_until(now, self.banned_until),
            });
        }
        let window = clock.ms(WEIGHT_WINDOW_MS);
        if now >= self.window_start + window {
            self.window_start = now - now.rem_euclid(window);
            self.used = 0;
            self.refused = 0;
        }
        if self.used + weight > self.limit {
            self.refused += 1;
            if self.refused > BAN_AFTER_429 {
                self.bans += 1;
                let ban = clock.ms(BAN_MS) << (self.bans - 1).min(10);
                self.banned_until = now + ban;
                return Err(Limited::Banned {
                    retry_after: secs_until(now, self.banned_until),
                });
            }
            return Err(Limited::TooMany {
                retry_after: secs_until(now, self.window_start + window),
            });
        }
        self.used += weight;
        Ok(self.used)
    }
}

/// A REST fault to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestFault {
    /// HTTP status to answer (500, 502, 503, 429, 418 …).
    pub status: u16,
    /// Requests still to fail; `None` until cleared.
    pub remaining: Option<u64>,
}

/// Binance's body for an injected status.
fn fault_error(status: u16) -> ApiError {
    match status {
        429 => ApiError::from_code(
            429,
            -1003,
            "Too many requests; current limit of IP is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API.",
        ),
        418 => ApiError::from_code(418, -1003, "Way too many requests; IP banned until later."),
        503 => ApiError::from_code(
            503,
            -1008,
            "Server is currently overloaded with other requests. Please try again in a few minutes.",
        ),
        s => ApiError::from_code(
            s,
            -1000,
            "An unknown error occured while processing the request.",
        ),
    }
}

fn with_header(mut response: Response, name: &'static str, value: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        response.headers_mut().insert(name, v);
    }
    response
}

/// The middleware: injected delay and errors first, then the weight.
pub async fn guard(State(sim): State<Shared>, request: Request, next: Next) -> Response {
    let weight = weight(
        request.method(),
        request.uri().path(),
        request.uri().query().unwrap_or(""),
    );
    let (delay, fault) = {
        let mut s = lock(&sim);
        let faults = &mut s.faults;
        let fault = match &mut faults.rest_error {
            Some(f) => {
                let status = f.status;
                if let Some(n) = &mut f.remaining {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        faults.rest_error = None;
                    }
                }
                Some(status)
            }
            None => None,
        };
        (faults.rest_delay_ms, fault)
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(status) = fault {
        let response = fault_error(status).into_response();
        return if matches!(status, 429 | 418) {
            with_header(response, "retry-after", 1)
        } else {
            response
        };
    }
    let charged = {
        let mut s = lock(&sim);
        let clock = s.clock;
        s.weights.charge(&clock, now_ms(), weight)
    };
    match charged {
        Ok(used) => with_header(
            next.run(request).await,
            "x-mbx-used-weight-1m",
            u64::from(used),
        ),
        Err(Limited::TooMany { retry_after }) => {
            let used = u64::from(lock(&sim).weights.used());
            let response =
                with_header(fault_error(429).into_response(), "retry-after", retry_after);
            with_header(response, "x-mbx-used-weight-1m", used)
        }
        Err(Limited::Banned { retry_after }) => {
            with_header(fault_error(418).into_response(), "retry-after", retry_after)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_limit_is_429_then_ignoring_it_is_418() {
        let clock = Clock::new(1);
        let mut m = WeightMeter::new(10);
        let t = 1_000_000 * 60_000;
        assert_eq!(m.charge(&clock, t, 5), Ok(5));
        assert_eq!(m.charge(&clock, t + 1, 5), Ok(10));
        assert_eq!(
            m.charge(&clock, t + 1_000, 1),
            Err(Limited::TooMany { retry_after: 59 })
        );
        for _ in 1..BAN_AFTER_429 {
            assert!(matches!(
                m.charge(&clock, t + 2_000, 1),
                Err(Limited::TooMany { .. })
            ));
        }
        assert_eq!(
            m.charge(&clock, t + 2_000, 1),
            Err(Limited::Banned { retry_after: 120 })
        );
        // A new window does not lift a ban.
        assert!(matches!(
            m.charge(&clock, t + 60_000, 1),
            Err(Limited::Banned { .. })
        ));
        assert_eq!(m.charge(&clock, t + 2_000 + 120_000, 1), Ok(1));
    }

    #[test]
    fn weights_of_the_documented_endpoints() {
        assert_eq!(weight(&Method::GET, "/fapi/v1/income", ""), 30);
        assert_eq!(weight(&Method::GET, "/fapi/v1/premiumIndex", ""), 10);
        assert_eq!(
            weight(&Method::GET, "/fapi/v1/premiumIndex", "symbol=BTCUSDT"),
            1
        );
        assert_eq!(weight(&Method::POST, "/fapi/v1/positionSide/dual", ""), 1);
        assert_eq!(weight(&Method::GET, "/fapi/v3/account", "timestamp=1"), 5);
    }
}
