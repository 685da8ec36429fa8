//! The user-data WebSocket, on Binance's routed paths (PROTOCOL §1.2):
//! `/private/ws?listenKey=<key>` and `/private/ws/<key>` send raw payloads; `/private/stream?listenKey=<key>`
//! wraps each as `{"stream":"<key>","data":<payload>}`. An unknown or expired listenKey is refused with
//! `-1125`.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;

use crate::auth::{Request, param};
use crate::rest::{ApiError, Shared, lock, now_ms};

/// The stream routes, to merge into the REST router.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/private/ws", get(raw_by_query))
        .route("/private/ws/{listen_key}", get(raw_by_path))
        .route("/private/stream", get(combined))
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
    let events = {
        let sim = lock(&sim);
        match sim.listen_key_account(&listen_key, now_ms()) {
            Some(account) => sim.subscribe(account),
            None => {
                return ApiError::from_code(400, -1125, "This listenKey does not exist.")
                    .into_response();
            }
        }
    };
    ws.on_upgrade(move |socket| forward(socket, events, listen_key, combined))
}

/// Sends the account's events until the client leaves or falls too far behind.
async fn forward(
    socket: WebSocket,
    mut events: broadcast::Receiver<Arc<str>>,
    key: String,
    combined: bool,
) {
    let (mut tx, mut rx) = socket.split();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Ok(payload) = event else {
                    // Lagged or closed: drop the connection; the client reconnects and backfills.
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                };
                let text = if combined {
                    format!("{{\"stream\":\"{key}\",\"data\":{payload}}}")
                } else {
                    payload.to_string()
                };
                if tx.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                    return;
                }
            }
            incoming = rx.next() => match incoming {
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
