//! Named readiness checks shared between the components of a process and `/readyz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A cheaply clonable set of named readiness checks (each clone sees the same checks).
///
/// The process is ready when at least one check is registered and every registered check is ok.
#[derive(Clone, Debug, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Health {
    /// An empty set of checks (not ready until a check is registered and ok).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the check `check` or updates its state.
    pub fn set(&self, check: &str, ok: bool) {
        self.lock().insert(check.to_owned(), ok);
    }

    /// Removes the check `check`; unknown names are ignored.
    pub fn remove(&self, check: &str) {
        self.lock().remove(check);
    }

    /// True iff at least one check is registered and every registered check is ok.
    pub fn ready(&self) -> bool {
        let checks = self.lock();
        !checks.is_empty() && checks.values().all(|ok| *ok)
    }

    /// Every registered check with its state, sorted by name.
    pub fn report(&self) -> Vec<(String, bool)> {
        self.lock()
            .iter()
            .map(|(name, ok)| (name.clone(), *ok))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, bool>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_some_check_and_all_ok() {
        let health = Health::new();
        assert!(!health.ready(), "no check registered");
        let clone = health.clone();
        clone.set("nats", true);
        assert!(health.ready());
        health.set("binance", false);
        assert!(!health.ready());
        assert_eq!(
            health.report(),
            [("binance".to_owned(), false), ("nats".to_owned(), true)]
        );
        health.set("binance", true);
        assert!(health.ready());
        health.remove("binance");
        health.remove("nats");
        health.remove("unknown");
        assert!(!health.ready());
        assert!(health.report().is_empty());
    }
}
