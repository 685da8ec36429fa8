//! One shutdown model: the first SIGINT/SIGTERM cancels a token, the second exits at once.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM (Ctrl-C off unix); a second signal calls
/// `std::process::exit(130)`. The handlers are installed before this returns.
///
/// # Panics
/// Outside a tokio runtime.
pub fn signal_token() -> CancellationToken {
    let token = CancellationToken::new();
    match Signals::install() {
        Ok(mut signals) => {
            let cancel = token.clone();
            tokio::spawn(async move {
                let signal = signals.next().await;
                tracing::info!(signal, "shutting down; send it again to exit immediately");
                cancel.cancel();
                let signal = signals.next().await;
                tracing::warn!(signal, "second signal, exiting now");
                std::process::exit(130);
            });
        }
        Err(error) => tracing::error!(%error, "cannot install signal handlers"),
    }
    token
}

/// Runs `f` to completion unless `token` is cancelled first (then `None`, and `f` is dropped).
pub async fn run_until_cancelled<F: Future>(token: &CancellationToken, f: F) -> Option<F::Output> {
    token.run_until_cancelled(f).await
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) -> &'static str {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn run_until_cancelled_returns_output_or_none() {
        let token = CancellationToken::new();
        assert_eq!(run_until_cancelled(&token, async { 7 }).await, Some(7));
        token.cancel();
        assert_eq!(
            run_until_cancelled(&token, std::future::pending::<()>()).await,
            None
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn first_sigterm_cancels_the_token() {
        let token = signal_token();
        assert!(!token.is_cancelled());
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), token.cancelled())
            .await
            .expect("SIGTERM cancels the token");
    }
}
