//! Typed state in JetStream KV, MessagePack-encoded with named fields, written with compare-and-set.
//!
//! A writer reads a value with its revision and writes back with that revision expected; a lost race is
//! [`KvError::Conflict`] and the caller re-reads and re-applies (DESIGN §4: never overwrite). Plain `put`
//! is for values with one writer and no history to protect, such as mark prices.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use async_nats::jetstream::kv::{CreateErrorKind, Store, UpdateErrorKind};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// A KV failure, by what the caller should do about it.
#[derive(Debug, Error)]
pub enum KvError {
    /// Someone else wrote the key since it was read: re-read and re-apply.
    #[error("{key}: revision changed since read (compare-and-set lost)")]
    Conflict {
        /// The key.
        key: String,
    },
    /// A stored value that does not decode as the expected type.
    #[error("{key}: stored value does not decode: {source}")]
    Decode {
        /// The key.
        key: String,
        /// The decoder's error.
        source: rmp_serde::decode::Error,
    },
    /// The value cannot be encoded.
    #[error("{key}: cannot encode: {source}")]
    Encode {
        /// The key.
        key: String,
        /// The encoder's error.
        source: rmp_serde::encode::Error,
    },
    /// The server could not be reached or refused; retrying may help.
    #[error("{key}: {source}")]
    Nats {
        /// The key.
        key: String,
        /// The client's error.
        source: async_nats::Error,
    },
}

/// A value and the revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its KV revision (the stream sequence of the write).
    pub revision: u64,
}

/// A KV bucket holding values of type `T`.
pub struct KvState<T> {
    store: Store,
    _values: PhantomData<fn() -> T>,
}

impl<T> Clone for KvState<T> {
    fn clone(&self) -> Self {
        KvState {
            store: self.store.clone(),
            _values: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> KvState<T> {
    /// Typed access to a bound bucket.
    pub fn new(store: Store) -> Self {
        KvState {
            store,
            _values: PhantomData,
        }
    }

    /// The bucket.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn encode(key: &str, value: &T) -> Result<Bytes, KvError> {
        rmp_serde::to_vec_named(value)
            .map(Bytes::from)
            .map_err(|source| KvError::Encode {
                key: key.to_owned(),
                source,
            })
    }

    /// Decodes a stored value.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<T, KvError> {
        rmp_serde::from_slice(bytes).map_err(|source| KvError::Decode {
            key: key.to_owned(),
            source,
        })
    }

    /// The current value of `key`, if any (a deleted key reads as none).
    pub async fn get(&self, key: &str) -> Result<Option<Versioned<T>>, KvError> {
        let entry = self.store.entry(key).await.map_err(|e| KvError::Nats {
            key: key.to_owned(),
            source: e.into(),
        })?;
        match entry {
            Some(e) if e.operation == async_nats::jetstream::kv::Operation::Put => {
                Ok(Some(Versioned {
                    value: Self::decode(key, &e.value)?,
                    revision: e.revision,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Writes `value` if `key` is still at `expected` (`None`: only if the key does not exist). Returns the
    /// new revision.
    pub async fn compare_and_set(
        &self,
        key: &str,
        value: &T,
        expected: Option<u64>,
    ) -> Result<u64, KvError> {
        let bytes = Self::encode(key, value)?;
        let conflict = || KvError::Conflict {
            key: key.to_owned(),
        };
        match expected {
            Some(revision) => {
                self.store
                    .update(key, bytes, revision)
                    .await
                    .map_err(|e| match e.kind() {
                        UpdateErrorKind::WrongLastRevision => conflict(),
                        _ => KvError::Nats {
                            key: key.to_owned(),
                            source: e.into(),
                        },
                    })
            }
            None => self
                .store
                .create(key, bytes)
                .await
                .map_err(|e| match e.kind() {
                    CreateErrorKind::AlreadyExists => conflict(),
                    _ => KvError::Nats {
                        key: key.to_owned(),
                        source: e.into(),
                    },
                }),
        }
    }

    /// Writes `value` whatever is there (single-writer values only).
    pub async fn put(&self, key: &str, value: &T) -> Result<u64, KvError> {
        let bytes = Self::encode(key, value)?;
        self.store.put(key, bytes).await.map_err(|e| KvError::Nats {
            key: key.to_owned(),
            source: e.into(),
        })
    }
}

/// Every key of a bucket matching `filter` (a key pattern: `>` for all, `a.>` for those under `a.`)
/// with its latest value and revision (deleted and purged keys left out).
///
/// Unlike `Store::keys`, which follows a consumer until a delivered entry has nothing pending behind it
/// or the bucket falls idle, this lists the bucket's subjects from the stream's info and reads each key's
/// last entry, so that it ends while the bucket is being rewritten (a processor republishing positions on
/// every mark price change). A key written during the call is read at a revision at least as new as the
/// one it had when the call began.
pub async fn latest(
    store: &Store,
    filter: &str,
) -> Result<BTreeMap<String, Versioned<Bytes>>, async_nats::Error> {
    use async_nats::jetstream::kv::Operation;
    use futures_util::TryStreamExt as _;

    let mut subjects = store
        .stream
        .info_with_subjects(format!("{}{filter}", store.prefix))
        .await?;
    let mut keys = Vec::new();
    while let Some((subject, _)) = subjects.try_next().await? {
        if let Some(key) = subject.strip_prefix(store.prefix.as_str()) {
            keys.push(key.to_owned());
        }
    }
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(entry) = store.entry(&key).await?
            && entry.operation == Operation::Put
        {
            out.insert(
                key,
                Versioned {
                    value: entry.value,
                    revision: entry.revision,
                },
            );
        }
    }
    Ok(out)
}
