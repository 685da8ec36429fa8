//! The user-data WebSocket, on Binance's routed paths (PROTOCOL §1.2):
//! `/private/ws?listenKey=<key>` and `/private/ws/<key>` send raw payloads; `/private/stream?listenKey=<key>`
//! wraps each as `{"stream":"<key>","data":<payload>}`. An unknown or expired listenKey is refused with
//! `-1125`.
//!
//! Every connection (user data and market) lives Binance's lifecycle (PROTOCOL §1.3), on the scaled
//! clock: a ping frame every 3 minutes, dropped when a ping stays unanswered for 10 minutes, closed at
//! 24 hours (under a large scale, pings at most every 100 ms and at least 1 s to answer). When its listenKey expires a user-data connection receives `listenKeyExpired` and then no
//! more events.

use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::auth::{Request, param};
use crate::clock::{Clock, MAX_CONNECTION_MS, PING_EVERY_MS, PONG_TIMEOUT_MS};
use crate::rest::{ApiError, Control, Shared, lock, now_ms};

/// Pings are never sent more often than this, whatever the time scale.
pub const MIN_PING_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// A ping is never given less than this to be answered, whatever the time scale.
pub const MIN_PONG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Frames written before one flush.
const MAX_BURST: usize = 512;

/// Read buffer of a connection: clients send only pongs and the odd control frame.
pub const READ_BUFFER: usize = 4096;

/// The stream routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/private/ws", get(raw_by_query))
        .route("/private/ws/{listen_key}", get(raw_by_path))
        .route("/private/stream", get(combined))
}

/// What a connection sends next.
#[derive(Debug, Clone)]
pub enum Out {
    /// A text frame.
    Text(String),
    /// The source cannot go on (the client fell too far behind): close.
    Close,
}

/// The frames a connection sends, in order.
pub type Source = Pin<Box<dyn Stream<Item = Out> + Send>>;

/// Who a connection belongs to, for controls.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    /// The account of a user-data connection.
    pub account: Option<usize>,
    /// Its listenKey.
    pub listen_key: Option<String>,
}

fn listen_key_of(query: &Option<String>) -> String {
    let req = Request {
        api_key: None,
        query: query.as_deref().unwrap_or(""),
        body: "",
    };
    param(&req, "listenKey").unwrap_or_default().to_owned()
}

async fn raw_by_query(
    ws: WebSocketUpgrade,
    State(sim): State<Shared>,
    RawQuery(q): RawQuery,
) -> Response {
    open(ws, sim, listen_key_of(&q), false)
}

async fn raw_by_path(
    ws: WebSocketUpgrade,
    State(sim): State<Shared>,
    Path(key): Path<String>,
) -> Response {
    open(ws, sim, key, false)
}

async fn combined(
    ws: WebSocketUpgrade,
    State(sim): State<Shared>,
    RawQuery(q): RawQuery,
) -> Response {
    open(ws, sim, listen_key_of(&q), true)
}

fn open(ws: WebSocketUpgrade, sim: Shared, listen_key: String, combined: bool) -> Response {
    let (events, control, clock, account) = {
        let sim = lock(&sim);
        match sim.listen_key_account(&listen_key, now_ms()) {
            Some(account) => (sim.subscribe(account), sim.control(), sim.clock, account),
            None => {
                return ApiError::from_code(400, -1125, "This listenKey does not exist.")
                    .into_response();
            }
        }
    };
    let source = user_events(events, listen_key.clone(), combined);
    let owner = Owner {
        account: Some(account),
        listen_key: Some(listen_key),
    };
    ws.read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| pump(socket, source, control, owner, clock, combined))
}

/// An account's events as frames; lagging too far behind closes the connection (the client
/// reconnects and backfills, as with Binance dropping a slow socket).
fn user_events(events: broadcast::Receiver<Arc<str>>, key: String, combined: bool) -> Source {
    Box::pin(stream::unfold(
        (events, false),
        move |(mut events, done)| {
            let key = key.clone();
            async move {
                if done {
                    return None;
                }
                match events.recv().await {
                    Ok(payload) => {
                        let text = if combined {
                            format!("{{\"stream\":\"{key}\",\"data\":{payload}}}")
                        } else {
                            payload.to_string()
                        };
                        Some((Out::Text(text), (events, false)))
                    }
                    Err(_) => Some((Out::Close, (events, true))),
                }
            }
        },
    ))
}

/// Runs a connection: frames from `source`, controls, pings and Binance's time limits.
pub async fn pump(
    socket: WebSocket,
    mut source: Source,
    mut control: broadcast::Receiver<Control>,
    owner: Owner,
    clock: Clock,
    combined: bool,
) {
    let (mut tx, mut rx) = socket.split();
    let born = Instant::now();
    let cut = born + clock.duration(MAX_CONNECTION_MS);
    // Floors keep a heavily scaled clock from dropping clients for scheduling jitter.
    let every = clock.duration(PING_EVERY_MS).max(MIN_PING_EVERY);
    let mut ping = tokio::time::interval_at(born + every, every);
    let pong_timeout = clock.duration(PONG_TIMEOUT_MS).max(MIN_PONG_TIMEOUT);
    // The oldest ping not answered yet.
    let mut unanswered: Option<Instant> = None;
    let mut expired = false;
    loop {
        tokio::select! {
            out = source.next(), if !expired => {
                // Whatever else is ready goes in the same write: one flush per burst.
                let (frames, close) = burst(out, &mut source, MAX_BURST);
                for text in frames {
                    if tx.feed(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                        return;
                    }
                }
                if close {
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                }
                if tx.flush().await.is_err() {
                    return;
                }
            },
            c = control.recv() => match c {
                Ok(Control::Drop(account)) if account.is_none() || account == owner.account => {
                    // Abrupt: no close frame, as a network failure looks.
                    return;
                }
                Ok(Control::Expired(key)) if owner.listen_key.as_deref() == Some(key.as_str()) => {
                    let payload = format!(
                        "{{\"e\":\"listenKeyExpired\",\"E\":{},\"listenKey\":\"{key}\"}}",
                        now_ms()
                    );
                    let text = if combined {
                        format!("{{\"stream\":\"{key}\",\"data\":{payload}}}")
                    } else {
                        payload
                    };
                    if tx.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                        return;
                    }
                    expired = true;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ping.tick() => {
                if unanswered.is_some_and(|t| t.elapsed() >= pong_timeout) {
                    return;
                }
                unanswered.get_or_insert_with(Instant::now);
                if tx.send(Message::Ping(axum::body::Bytes::from_static(b"sim"))).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(cut) => {
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Pong(_))) => unanswered = None,
                Some(Ok(Message::Ping(data))) => {
                    if tx.send(Message::Pong(data)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// `first` and whatever else `source` has ready, up to `max` frames: the texts to write in one go, and
/// whether the source ended or asked to close after them. The limit is checked before taking the next
/// item, so an item taken is an item returned.
fn burst(first: Option<Out>, source: &mut Source, max: usize) -> (Vec<String>, bool) {
    let mut texts = Vec::new();
    let mut next = first;
    loop {
        match next {
            Some(Out::Text(text)) => texts.push(text),
            Some(Out::Close) | None => return (texts, true),
        }
        if texts.len() >= max {
            return (texts, false);
        }
        match source.next().now_or_never() {
            Some(more) => next = more,
            None => return (texts, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_cut_a_long_queue_without_losing_a_frame() {
        let queued: Vec<Out> = (0..1300).map(|i| Out::Text(i.to_string())).collect();
        let mut source: Source = Box::pin(stream::iter(queued).chain(stream::iter([Out::Close])));
        let mut sent = Vec::new();
        let mut writes = 0;
        loop {
            let first = source.next().await;
            let (texts, close) = burst(first, &mut source, 512);
            assert!(texts.len() <= 512);
            sent.extend(texts);
            writes += 1;
            if close {
                break;
            }
        }
        let expected: Vec<String> = (0..1300).map(|i: i32| i.to_string()).collect();
        assert_eq!(sent, expected);
        assert_eq!(writes, 3);
    }
}
