//! The connection an ordered flow publishes on, replaced whole when it drops instead of reconnected.
//!
//! A client that reconnects keeps the messages it had not written yet and sends them first on the new
//! connection, while the ones it had written to the dead socket are lost with it. Sent again, those lost
//! ones are stored after messages that were sent after them, and the stream's order breaks (a dozen out
//! of 30 000 when a server is killed under a full window of acks). A [`Link`] made by [`Link::connect`]
//! avoids it: its client never reconnects once it has been connected. When it drops, the publisher asks
//! for a new client ([`Link::renew`]); the old one never sends what it still holds. The publisher then
//! sends again, in order, everything not yet acknowledged. What the old connection stored is a prefix
//! of what was sent on it, and the server drops the repeats by `Nats-Msg-Id`. So the stream keeps the
//! order of the calls.
//!
//! The replaced client stays idle in the process (a task and a closed socket) until it exits.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use acctmon_service::health::Health;
use async_nats::Client;
use async_nats::connection::State;
use tracing::warn;

use crate::connect::{ConnectError, NatsConfig, Once, open};

/// A publishing connection shared by the flows of one process: either a client given as is (it
/// reconnects by itself, and order across a reconnect is only as good as its buffering allows), or one
/// that is replaced on each drop ([`Link::connect`]).
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

enum Inner {
    Fixed(Client),
    Renewing(Box<Renewing>),
}

struct Renewing {
    config: NatsConfig,
    name: String,
    health: Health,
    check: &'static str,
    /// The number of the newest connection: the current one, or the one being opened after it was
    /// lost. Its events alone are told to `health`, and a client with another number is lost.
    newest: Arc<AtomicU64>,
    /// The current connection and its number.
    current: Mutex<(u64, Client)>,
    /// Held while a new connection is opened, so that one drop opens one connection.
    renewal: tokio::sync::Mutex<()>,
}

impl Link {
    /// A link that is always `client`.
    pub fn fixed(client: &Client) -> Link {
        Link {
            inner: Arc::new(Inner::Fixed(client.clone())),
        }
    }

    /// Connects as `name` with a client that is replaced, not reconnected, when it drops; `health`'s
    /// `check` is true while the current one is connected. Returns at once, as [`crate::connect()`].
    pub async fn connect(
        config: &NatsConfig,
        name: &str,
        health: &Health,
        check: &'static str,
    ) -> Result<Link, ConnectError> {
        let newest = Arc::new(AtomicU64::new(0));
        let once = Once {
            epoch: 0,
            current: newest.clone(),
        };
        let client = open(config, name, health, check, Some(once)).await?;
        Ok(Link {
            inner: Arc::new(Inner::Renewing(Box::new(Renewing {
                config: config.clone(),
                name: name.to_owned(),
                health: health.clone(),
                check,
                newest,
                current: Mutex::new((0, client)),
                renewal: tokio::sync::Mutex::new(()),
            }))),
        })
    }

    /// Whether the client is replaced when it drops.
    pub fn renews(&self) -> bool {
        matches!(*self.inner, Inner::Renewing(_))
    }

    /// The current client and its number.
    pub fn current(&self) -> (u64, Client) {
        match &*self.inner {
            Inner::Fixed(client) => (0, client.clone()),
            Inner::Renewing(r) => r.current().clone(),
        }
    }

    /// Whether the client numbered `epoch` can no longer deliver: a newer one exists, or it was
    /// connected and dropped (it will not reconnect). Never for a fixed link.
    pub fn is_lost(&self, epoch: u64, client: &Client) -> bool {
        match &*self.inner {
            Inner::Fixed(_) => false,
            Inner::Renewing(r) => {
                r.newest.load(Ordering::Acquire) != epoch
                    || client.connection_state() == State::Disconnected
            }
        }
    }

    /// Replaces the client numbered `lost` with a new connection, unless that was done already; returns
    /// the current client. A fixed link returns its client.
    pub async fn renew(&self, lost: u64) -> Result<(u64, Client), ConnectError> {
        let Inner::Renewing(r) = &*self.inner else {
            return Ok(self.current());
        };
        let _one = r.renewal.lock().await;
        if r.current().0 == lost {
            let next = lost + 1;
            // From now on the dropped client's events are not told; the new one's are.
            r.newest.store(next, Ordering::Release);
            warn!(
                check = r.check,
                connection = next,
                "nats connection lost; opening a new one"
            );
            let once = Once {
                epoch: next,
                current: r.newest.clone(),
            };
            let client = open(&r.config, &r.name, &r.health, r.check, Some(once)).await?;
            *r.current() = (next, client);
        }
        Ok(self.current())
    }
}

impl Renewing {
    fn current(&self) -> std::sync::MutexGuard<'_, (u64, Client)> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
