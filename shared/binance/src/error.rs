//! Why a payload could not be turned into domain events.

use acctmon_domain::NameError;
use serde::Deserialize;
use serde_json::Value;

use crate::scalar::EXPECTED_DECIMAL;

/// A payload that could not be decoded. Every variant says which payload and, where there is one, which
/// field failed, so that an operator can find it in the raw text that ingest keeps alongside.
///
/// All variants mean the same thing to a caller (the payload is undecodable: record it and move on); they
/// differ to tell a person what to look at.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON at all (syntax error or truncated input).
    #[error("not JSON: {0}")]
    Json(#[source] serde_json::Error),

    /// A decimal field whose value is not a decimal number.
    #[error("{payload}: field `{field}` is not a decimal number: {value}")]
    Decimal {
        /// The payload being read (`ORDER_TRADE_UPDATE`, a REST response type …).
        payload: &'static str,
        /// Path of the field, e.g. `o.L` or `a.P[0].pa`.
        field: String,
        /// The offending value as it appeared in the JSON.
        value: String,
    },

    /// A field of a closed set (side, position side, margin type) with a value this version does not know.
    #[error("{payload}: field `{field}` has unknown value {value:?}")]
    UnknownValue {
        /// The payload being read.
        payload: &'static str,
        /// Name of the field, e.g. `o.S`.
        field: &'static str,
        /// The value that was not recognised.
        value: String,
    },

    /// A name (symbol, asset) that must not be empty but is.
    #[error("{payload}: field `{field}` is empty")]
    Empty {
        /// The payload being read.
        payload: &'static str,
        /// Name of the field.
        field: &'static str,
    },

    /// A required figure that the payload does not carry.
    #[error("{payload}: missing {what}")]
    Missing {
        /// The payload being read.
        payload: &'static str,
        /// What is missing, in words.
        what: String,
    },

    /// Valid JSON whose shape does not fit the payload: a missing required field, a wrong type, an id
    /// that is not an integer.
    #[error("{payload}: {message} (at `{path}`)")]
    Shape {
        /// The payload being read.
        payload: &'static str,
        /// Path of the failing value (`.` for the whole payload).
        path: String,
        /// What serde reported.
        message: String,
    },

    /// Valid JSON that is not a stream payload: no `e` (event name) and no combined-stream `data`.
    #[error("not a Binance stream payload: {0}")]
    NotAnEvent(&'static str),

    /// One element of a JSON array failed.
    #[error("array element {index}: {source}")]
    Element {
        /// Zero-based index of the failing element.
        index: usize,
        /// Why it failed.
        #[source]
        source: Box<ParseError>,
    },
}

impl ParseError {
    /// Maps a [`NameError`] from the domain's parsers to the field it came from.
    pub(crate) fn name(payload: &'static str, field: &'static str, error: NameError) -> Self {
        match error {
            NameError::Empty(_) => ParseError::Empty { payload, field },
            NameError::Unknown { value, .. } => ParseError::UnknownValue {
                payload,
                field,
                value,
            },
            NameError::Account(value) => ParseError::UnknownValue {
                payload,
                field,
                value,
            },
        }
    }

    /// Explains why `T` could not be read from valid JSON text, by reading it once more while tracking the
    /// path (only on the error path, so the hot path pays nothing for it).
    pub(crate) fn explain_text<'a, T: Deserialize<'a>>(
        payload: &'static str,
        text: &'a str,
        error: serde_json::Error,
    ) -> Self {
        if error.is_syntax() || error.is_eof() || error.is_io() {
            return ParseError::Json(error);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(_) => ParseError::Shape {
                payload,
                path: ".".to_owned(),
                message: error.to_string(),
            },
            Err(tracked) => {
                let path = tracked.path().clone();
                let inner = tracked.into_inner();
                let at = |pointer: &str| {
                    serde_json::from_str::<Value>(text)
                        .ok()
                        .and_then(|v| v.pointer(pointer).map(value_text))
                };
                Self::classify(payload, &path, inner, at)
            }
        }
    }

    /// Like [`ParseError::explain_text`] for an already parsed [`Value`].
    pub(crate) fn explain_value<'a, T: Deserialize<'a>>(
        payload: &'static str,
        value: &'a Value,
        error: serde_json::Error,
    ) -> Self {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(_) => ParseError::Shape {
                payload,
                path: ".".to_owned(),
                message: error.to_string(),
            },
            Err(tracked) => {
                let path = tracked.path().clone();
                let inner = tracked.into_inner();
                Self::classify(payload, &path, inner, |pointer| {
                    value.pointer(pointer).map(value_text)
                })
            }
        }
    }

    fn classify(
        payload: &'static str,
        path: &serde_path_to_error::Path,
        inner: serde_json::Error,
        value_at: impl FnOnce(&str) -> Option<String>,
    ) -> Self {
        let message = inner.to_string();
        if message.contains(EXPECTED_DECIMAL) {
            let value = value_at(&json_pointer(path)).unwrap_or_default();
            ParseError::Decimal {
                payload,
                field: path.to_string(),
                value,
            }
        } else {
            ParseError::Shape {
                payload,
                path: path.to_string(),
                message,
            }
        }
    }
}

/// The RFC 6901 pointer of a tracked path, to fetch the offending value.
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

/// A value as a person would quote it: a string's text, or the JSON of anything else.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}
