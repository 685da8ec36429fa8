//! Request authentication as Binance does it (PROTOCOL §4.1–4.2): the `X-MBX-APIKEY` header names the
//! key; `signature` is the hex HMAC-SHA256, under the key's secret, of the query string followed directly
//! by the form body (without the `signature` pair itself); `timestamp` must satisfy
//! `timestamp < serverTime + 1000` and `serverTime − timestamp ≤ recvWindow` (default 5000 ms).
//!
//! Pure: the caller passes the server time (the simulator's scaled clock) and a key lookup.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A secret key. Its `Debug` prints nothing, so it cannot leak into logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The hex HMAC-SHA256 of `payload` under `secret`, as Binance clients compute `signature`.
///
/// ```
/// use acctmon_sim::auth::{sign, Secret};
/// let secret = Secret::new("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9");
/// let payload = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
/// assert_eq!(sign(&secret, payload), "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9");
/// ```
pub fn sign(secret: &Secret, payload: &str) -> String {
    hex::encode(mac(secret, payload).finalize().into_bytes())
}

fn mac(secret: &Secret, payload: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.bytes()).expect("HMAC takes any key length");
    m.update(payload.as_bytes());
    m
}

/// Why a request was refused, with Binance's code, message and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `X-MBX-APIKEY`, or a key the exchange does not know (-2015, HTTP 401).
    RejectedKey,
    /// `signature` does not match (-1022).
    BadSignature,
    /// A mandatory parameter is missing or malformed (-1102), naming it.
    MissingParameter(&'static str),
    /// `timestamp` more than 1000 ms ahead of the server (-1021).
    AheadOfServer,
    /// `timestamp` older than `recvWindow` (-1021).
    OutsideRecvWindow,
}

impl AuthError {
    /// Binance's error code.
    pub fn code(&self) -> i64 {
        match self {
            AuthError::RejectedKey => -2015,
            AuthError::BadSignature => -1022,
            AuthError::MissingParameter(_) => -1102,
            AuthError::AheadOfServer | AuthError::OutsideRecvWindow => -1021,
        }
    }

    /// Binance's message.
    pub fn message(&self) -> String {
        match self {
            AuthError::RejectedKey => "Invalid API-key, IP, or permissions for action.".to_owned(),
            AuthError::BadSignature => "Signature for this request is not valid.".to_owned(),
            AuthError::MissingParameter(p) => {
                format!("Mandatory parameter '{p}' was not sent, was empty/null, or malformed.")
            }
            AuthError::AheadOfServer => {
                "Timestamp for this request was 1000ms ahead of the server's time.".to_owned()
            }
            AuthError::OutsideRecvWindow => {
                "Timestamp for this request is outside of the recvWindow.".to_owned()
            }
        }
    }

    /// The HTTP status Binance answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::RejectedKey => 401,
            _ => 400,
        }
    }
}

/// The parts of a request that authentication reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The `X-MBX-APIKEY` header.
    pub api_key: Option<&'a str>,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// The raw `application/x-www-form-urlencoded` body.
    pub body: &'a str,
}

/// Removes the `signature=…` pair from a parameter string; returns the rest and the signature.
fn split_signature(params: &str) -> (String, Option<&str>) {
    let mut rest = Vec::new();
    let mut signature = None;
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("signature=") {
            Some(s) => signature = Some(s),
            None => rest.push(pair),
        }
    }
    (rest.join("&"), signature)
}

/// The value of parameter `name` in the query or the body.
pub fn param<'a>(req: &Request<'a>, name: &str) -> Option<&'a str> {
    req.query
        .split('&')
        .chain(req.body.split('&'))
        .find_map(|pair| pair.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// Checks a request to an API-key-only endpoint (listenKey): returns the key when it is known.
pub fn check_key<'a, S>(
    req: &Request<'a>,
    lookup: impl Fn(&str) -> Option<S>,
) -> Result<S, AuthError> {
    req.api_key.and_then(lookup).ok_or(AuthError::RejectedKey)
}

/// Checks a signed request (`USER_DATA`, `TRADE`): key, signature, then timestamp against `server_time`.
/// `lookup` maps a key to its account and secret.
pub fn check_signed<'a, A>(
    req: &Request<'a>,
    server_time: i64,
    lookup: impl Fn(&str) -> Option<(A, Secret)>,
) -> Result<A, AuthError> {
    let (account, secret) = req
        .api_key
        .and_then(&lookup)
        .ok_or(AuthError::RejectedKey)?;
    let (query, sig_q) = split_signature(req.query);
    let (body, sig_b) = split_signature(req.body);
    let signature = sig_q
        .or(sig_b)
        .ok_or(AuthError::MissingParameter("signature"))?;
    let expected = mac(&secret, &format!("{query}{body}"))
        .finalize()
        .into_bytes();
    let given = hex::decode(signature).map_err(|_| AuthError::BadSignature)?;
    if !bool::from(expected.as_slice().ct_eq(&given)) {
        return Err(AuthError::BadSignature);
    }
    let timestamp: i64 = param(req, "timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or(AuthError::MissingParameter("timestamp"))?;
    let recv_window: i64 = match param(req, "recvWindow") {
        None => 5000,
        Some(w) => w
            .parse()
            .map_err(|_| AuthError::MissingParameter("recvWindow"))?,
    };
    if timestamp >= server_time + 1000 {
        return Err(AuthError::AheadOfServer);
    }
    if server_time - timestamp > recv_window {
        return Err(AuthError::OutsideRecvWindow);
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";
    const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    const NOW: i64 = 1_591_702_613_943;

    fn lookup(key: &str) -> Option<(&'static str, Secret)> {
        (key == KEY).then(|| ("main", Secret::new(SECRET)))
    }

    fn signed(query: &str) -> String {
        format!("{query}&signature={}", sign(&Secret::new(SECRET), query))
    }

    fn req<'a>(key: Option<&'a str>, query: &'a str, body: &'a str) -> Request<'a> {
        Request {
            api_key: key,
            query,
            body,
        }
    }

    #[test]
    fn a_correctly_signed_request_is_accepted() {
        let q = signed("symbol=BTCUSDT&recvWindow=5000&timestamp=1591702613943");
        assert_eq!(
            check_signed(&req(Some(KEY), &q, ""), NOW, lookup),
            Ok("main")
        );
    }

    #[test]
    fn the_signature_covers_query_then_body() {
        let query = "symbol=BTCUSDT&side=BUY&type=LIMIT";
        let body = "quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        let sig = sign(&Secret::new(SECRET), &format!("{query}{body}"));
        let body = format!("{body}&signature={sig}");
        assert_eq!(
            check_signed(&req(Some(KEY), query, &body), NOW, lookup),
            Ok("main")
        );
        // The docs' test vector, sent as query and signature in the body.
        let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        let body = "signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9";
        assert_eq!(
            check_signed(&req(Some(KEY), q, body), NOW, lookup),
            Ok("main")
        );
    }

    #[test]
    fn refusals_carry_binance_codes() {
        let good = signed("timestamp=1591702613943");
        let cases: [(Request<'_>, i64, i64); 6] = [
            (req(None, &good, ""), NOW, -2015),
            (req(Some("unknown"), &good, ""), NOW, -2015),
            (
                req(Some(KEY), "timestamp=1591702613943&signature=00ff", ""),
                NOW,
                -1022,
            ),
            (req(Some(KEY), "timestamp=1591702613943", ""), NOW, -1102),
            (req(Some(KEY), &good, ""), NOW + 5001, -1021),
            (req(Some(KEY), &good, ""), NOW - 1000, -1021),
        ];
        for (i, (r, now, code)) in cases.iter().enumerate() {
            let err = check_signed(r, *now, lookup).unwrap_err();
            assert_eq!(err.code(), *code, "case {i}: {err:?}");
            assert!(!err.message().is_empty());
        }
        assert_eq!(AuthError::RejectedKey.http_status(), 401);
        assert_eq!(AuthError::BadSignature.http_status(), 400);
    }

    #[test]
    fn recv_window_is_honoured() {
        let q = signed("recvWindow=60000&timestamp=1591702613943");
        assert!(check_signed(&req(Some(KEY), &q, ""), NOW + 59_000, lookup).is_ok());
        assert_eq!(
            check_signed(&req(Some(KEY), &q, ""), NOW + 61_000, lookup),
            Err(AuthError::OutsideRecvWindow)
        );
    }

    #[test]
    fn a_tampered_parameter_breaks_the_signature() {
        let q = signed("symbol=BTCUSDT&quantity=1&timestamp=1591702613943")
            .replace("quantity=1", "quantity=9");
        assert_eq!(
            check_signed(&req(Some(KEY), &q, ""), NOW, lookup),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new(SECRET)), "Secret(…)");
    }

    #[test]
    fn listen_key_calls_need_only_a_known_key() {
        let r = req(Some(KEY), "", "");
        assert_eq!(check_key(&r, |k| (k == KEY).then_some(1)), Ok(1));
        assert_eq!(
            check_key(&req(None, "", ""), |_| Some(1)),
            Err(AuthError::RejectedKey)
        );
    }
}
