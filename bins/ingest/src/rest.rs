//! The Binance REST calls ingest makes: listenKey, server time, account snapshot, userTrades, income.
//!
//! Signed calls carry `timestamp` on the server's clock (our clock plus the measured offset) and an
//! HMAC-SHA256 signature. Every answer's `X-MBX-USED-WEIGHT-1M` is recorded. A 429 or 418 with
//! `Retry-After` stops every call of this client until then; 5xx answers and transport errors are retried
//! with backoff; `-1021` (timestamp outside recvWindow) re-measures the offset and retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use acctmon_binance::rest::{
    AccountInformation, ApiError, IncomeRow, ListenKeyResponse, PositionRisk, PositionSideDual,
    ServerTime, UserTrade,
};
use acctmon_service::config::Secret;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use sha2::Sha256;
use thiserror::Error;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// A REST failure, by what the caller does about it.
#[derive(Debug, Error)]
pub enum RestError {
    /// Binance refused the request with an error code (after retries where retrying made sense).
    #[error("{path}: {error}")]
    Api {
        /// The endpoint.
        path: &'static str,
        /// Binance's code and message.
        error: ApiError,
    },
    /// The transport or the server kept failing.
    #[error("{path}: {reason}")]
    Unavailable {
        /// The endpoint.
        path: &'static str,
        /// What happened (never includes the signature or the keys).
        reason: String,
    },
}

impl RestError {
    /// The Binance error code, if Binance answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RestError::Api { error, .. } => Some(error.code),
            RestError::Unavailable { .. } => None,
        }
    }
}

/// A client for one account's API key.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: Arc<str>,
    key: Arc<Secret>,
    secret: Arc<Secret>,
    recv_window: u64,
    /// Server time − local time, ms.
    offset: Arc<AtomicI64>,
    /// Until when (local ms) requests must wait after a 429/418.
    blocked_until: Arc<AtomicI64>,
    /// Serializes the offset measurement.
    sync: Arc<Mutex<()>>,
    metrics: Metrics,
    account: Arc<str>,
}

/// Attempts for one call before giving up (transport errors and 5xx).
const ATTEMPTS: u32 = 6;

/// Local time, ms since the epoch.
pub fn local_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

impl Rest {
    /// A client of `base` (`https://fapi.binance.com` or a simulator's `http://127.0.0.1:port`).
    pub fn new(
        base: &str,
        key: Secret,
        secret: Secret,
        recv_window: u64,
        metrics: Metrics,
        account: &str,
    ) -> Result<Rest, RestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| RestError::Unavailable {
                path: "client",
                reason: e.to_string(),
            })?;
        Ok(Rest {
            http,
            base: base.trim_end_matches('/').into(),
            key: Arc::new(key),
            secret: Arc::new(secret),
            recv_window,
            offset: Arc::new(AtomicI64::new(0)),
            blocked_until: Arc::new(AtomicI64::new(0)),
            sync: Arc::new(Mutex::new(())),
            metrics,
            account: account.into(),
        })
    }

    /// The server's clock now, as far as we know it.
    pub fn server_now(&self) -> i64 {
        local_ms() + self.offset.load(Ordering::Relaxed)
    }

    /// Measures the server-time offset (half the round trip is assumed each way).
    pub async fn sync_time(&self) -> Result<i64, RestError> {
        let _guard = self.sync.lock().await;
        let before = local_ms();
        let t: ServerTime = self
            .call(Method::GET, "/fapi/v1/time", String::new(), Auth::None)
            .await?;
        let after = local_ms();
        let offset = t.server_time - (before + after) / 2;
        self.offset.store(offset, Ordering::Relaxed);
        debug!(offset, "server time offset");
        Ok(offset)
    }

    /// `POST /fapi/v1/listenKey`.
    pub async fn create_listen_key(&self) -> Result<String, RestError> {
        let r: ListenKeyResponse = self
            .call(Method::POST, "/fapi/v1/listenKey", String::new(), Auth::Key)
            .await?;
        Ok(r.listen_key)
    }

    /// `PUT /fapi/v1/listenKey`: extends the key by 60 minutes; `-1125` when it no longer exists.
    pub async fn keepalive_listen_key(&self) -> Result<(), RestError> {
        let _: serde_json::Value = self
            .call(Method::PUT, "/fapi/v1/listenKey", String::new(), Auth::Key)
            .await?;
        Ok(())
    }

    /// `GET /fapi/v3/account`.
    pub async fn account(&self) -> Result<AccountInformation, RestError> {
        self.call(Method::GET, "/fapi/v3/account", String::new(), Auth::Signed)
            .await
    }

    /// `GET /fapi/v3/positionRisk`.
    pub async fn position_risk(&self) -> Result<Vec<PositionRisk>, RestError> {
        self.call(
            Method::GET,
            "/fapi/v3/positionRisk",
            String::new(),
            Auth::Signed,
        )
        .await
    }

    /// `GET /fapi/v1/positionSide/dual`.
    pub async fn position_mode(&self) -> Result<PositionSideDual, RestError> {
        self.call(
            Method::GET,
            "/fapi/v1/positionSide/dual",
            String::new(),
            Auth::Signed,
        )
        .await
    }

    /// `GET /fapi/v1/userTrades` of `symbol`, from trade id `from_id` or from `start_time`, up to `limit`.
    pub async fn user_trades(
        &self,
        symbol: &str,
        from_id: Option<u64>,
        start_time: Option<i64>,
        limit: u32,
    ) -> Result<Vec<UserTrade>, RestError> {
        let mut q = format!("symbol={symbol}&limit={limit}");
        if let Some(id) = from_id {
            q.push_str(&format!("&fromId={id}"));
        } else if let Some(t) = start_time {
            q.push_str(&format!("&startTime={t}"));
        }
        self.call(Method::GET, "/fapi/v1/userTrades", q, Auth::Signed)
            .await
    }

    /// `GET /fapi/v1/income` from `start_time` (all types), up to `limit` rows in time order.
    pub async fn income(&self, start_time: i64, limit: u32) -> Result<Vec<IncomeRow>, RestError> {
        let q = format!("startTime={start_time}&limit={limit}");
        self.call(Method::GET, "/fapi/v1/income", q, Auth::Signed)
            .await
    }

    fn sign(&self, query: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes()) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(query.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    async fn wait_if_blocked(&self) {
        let until = self.blocked_until.load(Ordering::Relaxed);
        let now = local_ms();
        if until > now {
            let ms = u64::try_from(until - now).unwrap_or(0);
            warn!(account = %self.account, wait_ms = ms, "REST blocked by Retry-After; waiting");
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &'static str,
        params: String,
        auth: Auth,
    ) -> Result<T, RestError> {
        let mut backoff = Duration::from_millis(200);
        let mut resynced = false;
        for attempt in 1..=ATTEMPTS {
            self.wait_if_blocked().await;
            let query = match auth {
                Auth::Signed => {
                    let mut q = params.clone();
                    if !q.is_empty() {
                        q.push('&');
                    }
                    q.push_str(&format!(
                        "recvWindow={}&timestamp={}",
                        self.recv_window,
                        self.server_now()
                    ));
                    let signature = self.sign(&q);
                    format!("{q}&signature={signature}")
                }
                Auth::None | Auth::Key => params.clone(),
            };
            let url = if query.is_empty() {
                format!("{}{path}", self.base)
            } else {
                format!("{}{path}?{query}", self.base)
            };
            let mut request = self.http.request(method.clone(), &url);
            if !matches!(auth, Auth::None) {
                request = request.header("X-MBX-APIKEY", self.key.expose());
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    // reqwest's error text holds the URL, and so the signature: report the kind only.
                    let reason = transport_reason(&e);
                    self.metrics.rest_errors.with_label_values(&[path]).inc();
                    warn!(account = %self.account, path, attempt, %reason, "REST transport error");
                    if attempt == ATTEMPTS {
                        return Err(RestError::Unavailable { path, reason });
                    }
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let status = response.status();
            if let Some(w) = response
                .headers()
                .get("x-mbx-used-weight-1m")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
            {
                self.metrics
                    .rest_weight
                    .with_label_values(&[&self.account])
                    .set(w);
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok());
            let body = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&body).map_err(|e| RestError::Unavailable {
                    path,
                    reason: format!("unexpected answer: {e}"),
                });
            }
            self.metrics.rest_errors.with_label_values(&[path]).inc();
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::IM_A_TEAPOT {
                let secs = retry_after.unwrap_or(if status == StatusCode::IM_A_TEAPOT {
                    120
                } else {
                    10
                });
                self.blocked_until
                    .fetch_max(local_ms() + secs * 1000, Ordering::Relaxed);
                warn!(account = %self.account, path, %status, retry_after = secs, "REST rate limited");
                continue;
            }
            let api: Option<ApiError> = serde_json::from_str(&body).ok();
            if status.is_server_error() {
                warn!(account = %self.account, path, %status, attempt, "REST server error");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            let error = api.unwrap_or(ApiError {
                code: 0,
                msg: format!("HTTP {status}"),
            });
            if error.code == -1021 && !resynced {
                resynced = true;
                Box::pin(self.sync_time()).await?;
                continue;
            }
            return Err(RestError::Api { path, error });
        }
        Err(RestError::Unavailable {
            path,
            reason: "rate limited on every attempt".into(),
        })
    }
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    Key,
    Signed,
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_body() || e.is_decode() {
        "broken answer".into()
    } else {
        "transport error".into()
    }
}

/// `d` ± 20 %.
pub fn jitter(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let spread = ms / 5;
    let low = ms - spread;
    Duration::from_millis(low + rand::random_range(0..=spread * 2))
}
