//! Mark-price streams on Binance's `/market` route (PROTOCOL §5.1): `/market/ws/<stream>[/<stream>…]`
//! sends raw payloads, `/market/stream?streams=<stream>/<stream>…` wraps each as
//! `{"stream":"<name>","data":<payload>}`. Streams: `<symbol>@markPrice` (every 3 s),
//! `<symbol>@markPrice@1s` (every second), `!markPrice@arr` and `!markPrice@arr@1s` (every symbol, as one
//! array). Symbols are lower case in stream names. Update periods follow the time scale (never under
//! 20 ms); prices come from the simulator's random walk.

use std::collections::VecDeque;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;
use tokio::time::Instant;

use crate::auth::{Request, param};
use crate::rest::{ApiError, Shared, lock, now_ms};
use crate::stream::{Out, Owner, Source, pump};

/// The market routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/market/ws/{*streams}", get(raw))
        .route("/market/stream", get(combined))
}

/// One subscribed stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkStream {
    /// The stream's name as subscribed.
    pub name: String,
    /// Upper-case symbol, or `None` for every symbol (`!markPrice@arr`).
    pub symbol: Option<String>,
    /// Binance's update period, ms.
    pub period_ms: i64,
}

/// Parses a stream name; `None` when it is not a mark-price stream.
pub fn parse_stream(name: &str) -> Option<MarkStream> {
    let (base, period_ms) = match name.strip_suffix("@1s") {
        Some(b) => (b, 1000),
        None => (name, 3000),
    };
    let symbol = if base == "!markPrice@arr" {
        None
    } else {
        let s = base.strip_suffix("@markPrice")?;
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return None;
        }
        Some(s.to_ascii_uppercase())
    };
    Some(MarkStream {
        name: name.to_owned(),
        symbol,
        period_ms,
    })
}

fn parse_all(list: &str) -> Result<Vec<MarkStream>, ApiError> {
    let streams: Option<Vec<MarkStream>> = list
        .split('/')
        .filter(|s| !s.is_empty())
        .map(parse_stream)
        .collect();
    match streams {
        Some(s) if !s.is_empty() && s.len() <= 1024 => Ok(s),
        _ => Err(ApiError::from_code(400, -1121, "Invalid stream name.")),
    }
}

async fn raw(
    ws: WebSocketUpgrade,
    State(sim): State<Shared>,
    Path(streams): Path<String>,
) -> Response {
    match parse_all(&streams) {
        Ok(s) => open(ws, sim, s, false),
        Err(e) => e.into_response(),
    }
}

async fn combined(
    ws: WebSocketUpgrade,
    State(sim): State<Shared>,
    RawQuery(q): RawQuery,
) -> Response {
    let req = Request {
        api_key: None,
        query: q.as_deref().unwrap_or(""),
        body: "",
    };
    match parse_all(param(&req, "streams").unwrap_or_default()) {
        Ok(s) => open(ws, sim, s, true),
        Err(e) => e.into_response(),
    }
}

fn open(ws: WebSocketUpgrade, sim: Shared, streams: Vec<MarkStream>, combined: bool) -> Response {
    let (control, clock) = {
        let s = lock(&sim);
        (s.control(), s.clock)
    };
    let periods: Vec<Duration> = streams
        .iter()
        .map(|s| clock.duration(s.period_ms).max(Duration::from_millis(20)))
        .collect();
    let source = marks(sim, streams, periods, combined);
    ws.read_buffer_size(crate::stream::READ_BUFFER)
        .on_upgrade(move |socket| pump(socket, source, control, Owner::default(), clock, combined))
}

struct Schedule {
    sim: Shared,
    streams: Vec<MarkStream>,
    periods: Vec<Duration>,
    due: Vec<Instant>,
    queue: VecDeque<String>,
    combined: bool,
}

impl Schedule {
    /// The frames of every stream due now.
    fn fill(&mut self, now: Instant) {
        let sim = lock(&self.sim);
        let t = now_ms();
        for (i, s) in self.streams.iter().enumerate() {
            if self.due[i] > now {
                continue;
            }
            self.due[i] = now + self.periods[i];
            let payload = match &s.symbol {
                Some(symbol) => match sim.exchange.mark_payload(symbol, t) {
                    Some(p) => p,
                    None => continue,
                },
                None => {
                    let all: Vec<String> = sim
                        .exchange
                        .marks()
                        .keys()
                        .filter_map(|symbol| sim.exchange.mark_payload(symbol, t))
                        .collect();
                    format!("[{}]", all.join(","))
                }
            };
            self.queue.push_back(if self.combined {
                format!("{{\"stream\":\"{}\",\"data\":{payload}}}", s.name)
            } else {
                payload
            });
        }
    }
}

fn marks(sim: Shared, streams: Vec<MarkStream>, periods: Vec<Duration>, combined: bool) -> Source {
    let now = Instant::now();
    let schedule = Schedule {
        sim,
        due: vec![now; streams.len()],
        streams,
        periods,
        queue: VecDeque::new(),
        combined,
    };
    Box::pin(stream::unfold(schedule, |mut s| async move {
        loop {
            if let Some(frame) = s.queue.pop_front() {
                return Some((Out::Text(frame), s));
            }
            let next = s.due.iter().min().copied().unwrap_or_else(Instant::now);
            tokio::time::sleep_until(next).await;
            s.fill(Instant::now());
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_as_binance_spells_them() {
        let s = parse_stream("btcusdt@markPrice@1s").unwrap();
        assert_eq!((s.symbol.as_deref(), s.period_ms), (Some("BTCUSDT"), 1000));
        assert_eq!(parse_stream("ethusdt@markPrice").unwrap().period_ms, 3000);
        assert_eq!(parse_stream("!markPrice@arr").unwrap().symbol, None);
        assert_eq!(parse_stream("!markPrice@arr@1s").unwrap().period_ms, 1000);
        assert!(parse_stream("BTCUSDT@markPrice").is_none());
        assert!(parse_stream("btcusdt@aggTrade").is_none());
        assert!(parse_all("btcusdt@markPrice/x").is_err());
    }
}
