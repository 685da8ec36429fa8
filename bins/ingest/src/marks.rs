//! Mark prices → KV `marks`: one combined market stream of the wanted symbols, reopened when the set
//! changes.

use std::collections::BTreeSet;

use acctmon_bus::KvState;
use acctmon_bus::subject::mark_key;
use acctmon_domain::{Account, Event, MarkPrice};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::account::backoff;
use crate::config::MarksConfig;
use crate::interest::Interest;
use crate::metrics::Metrics;

/// The combined-stream URL of `symbols`' 1-second mark prices.
pub fn stream_url(ws_base: &str, symbols: &BTreeSet<String>) -> String {
    let streams: Vec<String> = symbols
        .iter()
        .map(|s| format!("{}@markPrice@1s", s.to_lowercase()))
        .collect();
    format!("{ws_base}/market/stream?streams={}", streams.join("/"))
}

/// Follows the wanted symbols' mark prices until `shutdown`.
pub async fn run(
    ws_base: String,
    config: MarksConfig,
    interest: Interest,
    marks: KvState<MarkPrice>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    // The decoder needs an account for user events; market frames carry none.
    let Ok(nobody) = Account::new("marks") else {
        unreachable!("a valid alias")
    };
    let mut failures = 0u32;
    let mut check = tokio::time::interval(config.check_every);
    while !shutdown.is_cancelled() {
        let wanted = interest.wanted(config.recent);
        if wanted.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = check.tick() => continue,
            }
        }
        let url = stream_url(&ws_base, &wanted);
        let mut socket = match tokio_tungstenite::connect_async_with_config(
            url.as_str(),
            None,
            true,
        )
        .await
        {
            Ok((socket, _)) => socket,
            Err(e) => {
                failures += 1;
                warn!(error = %e, "mark-price stream: cannot connect");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff(failures, std::time::Duration::from_millis(200), std::time::Duration::from_secs(10))) => continue,
                }
            }
        };
        info!(symbols = wanted.len(), "mark-price stream open");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = check.tick() => {
                    if interest.wanted(config.recent) != wanted {
                        debug!("followed symbols changed; resubscribing");
                        break;
                    }
                }
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        failures = 0;
                        let Ok(events) = acctmon_binance::decode_frame(&nobody, text.as_str()) else {
                            warn!(raw = %text.as_str(), "undecodable mark-price frame skipped");
                            continue;
                        };
                        for event in events {
                            if let Event::Mark(mark) = event {
                                let key = mark_key(&mark.symbol);
                                match marks.put(&key, &mark).await {
                                    Ok(_) => metrics.marks.inc(),
                                    Err(e) => warn!(error = %e, "cannot write mark price"),
                                }
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        failures += 1;
                        warn!("mark-price stream ended; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}
