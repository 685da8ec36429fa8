//! acctmon-testkit: dev-only helpers for acctmon's integration tests.
//!
//! - [`NatsServer`]: a real `nats-server` (with JetStream) on a free loopback port, its store in a
//!   temporary directory that lives as long as the value; it can be killed, stopped and restarted on
//!   the same port and store, to test reconnection and durability.
//! - [`Sim`]: the exchange simulator (`acctmon-sim`) served in-process on a free loopback port, with its
//!   ground truth (`/_sim/state`) and admin API (`/_sim/…`) one call away.
//! - [`jetstream::raw_publish`]: the raw JetStream rate the throughput benchmarks compare with.
//! - [`python::python_venv`]: the pinned Python of the client-compatibility tests;
//!   [`python::run_with_timeout`] runs a command with a deadline.
//! - [`wait_until`] polls an async condition until it holds or a timeout passes; [`free_port`] picks a
//!   free loopback TCP port.
//!
//! Everything here panics on failure, with what it knows (the server log, the HTTP body): in a test,
//! the panic is the failure report.

// Test helpers: a panic with its message is the failure report a test wants, so `unwrap`/`expect`
// are the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acctmon_sim::server::{Config, run};
use tempfile::TempDir;

pub mod jetstream;
pub mod python;

/// How long a `nats-server` gets to accept connections after being spawned.
const NATS_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is probed.
const NATS_POLL: Duration = Duration::from_millis(20);
/// How long [`NatsServer::stop`] waits after SIGTERM before killing.
const NATS_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A free TCP port on 127.0.0.1, found by binding port 0 and letting the listener go. Another process
/// could take it before it is used; on loopback in tests that is rare enough.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// Polls `f` every 25 ms until it returns `true`; panics with `what` if `timeout` passes first.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The readiness checks a service's `/readyz` reports (`{"ready":bool,"checks":{name:bool,…}}`), from
/// its admin address `http://host:port`.
///
/// # Panics
/// If the service does not answer with JSON.
pub async fn readiness(admin: &str) -> serde_json::Value {
    reqwest::get(format!("{admin}/readyz"))
        .await
        .expect("GET /readyz")
        .json()
        .await
        .expect("/readyz answers JSON")
}

/// The `nats-server` executable: on `PATH`, else in `/usr/sbin` or `/usr/local/bin`.
///
/// # Panics
/// If there is none, saying how to install it.
fn nats_server_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("nats-server not found: apt-get install -y nats-server"))
}

/// A real `nats-server` with JetStream on `127.0.0.1:<port>`, for as long as the value lives.
///
/// Its store and its log (`nats-server.log`, appended to across restarts) are in a temporary directory
/// removed on drop; dropping also kills the process.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    args: Vec<OsString>,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    store: PathBuf,
    // Last, so the process is gone (see `Drop`) before the directory is removed.
    dir: TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js -D -a 127.0.0.1 -p <free port> -sd <temporary store>` and waits until it
    /// accepts connections. `-D` puts each client connection's opening and closing, with the reason it
    /// was closed, in the log ([`NatsServer::connection_events`]).
    ///
    /// # Panics
    /// If `nats-server` is not installed, or it does not accept connections within 10 s (the panic
    /// carries its log).
    pub fn start() -> NatsServer {
        let port = free_port();
        let (dir, store, log) = Self::workspace();
        let args = vec![
            OsString::from("-js"),
            OsString::from("-D"),
            OsString::from("-a"),
            OsString::from("127.0.0.1"),
            OsString::from("-p"),
            OsString::from(port.to_string()),
            OsString::from("-sd"),
            store.clone().into_os_string(),
        ];
        Self::launch(port, dir, store, log, args)
    }

    /// Starts `nats-server -c <file>` with a configuration file of
    /// `listen: 127.0.0.1:<free port>`, `jetstream { store_dir: "<temporary store>" }` and then
    /// `extra` verbatim (e.g. `mappings = { "p.*": "q.{{partition(16,1)}}.{{wildcard(1)}}" }`), and
    /// waits until it accepts connections.
    ///
    /// # Panics
    /// As [`NatsServer::start`]; also when the server refuses the configuration.
    pub fn with_config(extra: &str) -> NatsServer {
        let port = free_port();
        let (dir, store, log) = Self::workspace();
        let store_text = store.to_str().expect("temporary directory path is UTF-8");
        assert!(
            !store_text.contains(['"', '\\']),
            "temporary directory path {store_text:?} cannot be quoted in a NATS config"
        );
        let config = dir.path().join("nats-server.conf");
        let text = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{store_text}\" }}\n{extra}\n"
        );
        std::fs::write(&config, text).expect("write nats-server.conf");
        let args = vec![OsString::from("-c"), config.into_os_string()];
        Self::launch(port, dir, store, log, args)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port, the same across [`NatsServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory, the same across [`NatsServer::restart`].
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// Everything the server has written to stdout and stderr so far, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's lines about client connections closed or in trouble (slow consumers, stale
    /// connections, read and write errors) and the server's warnings and errors: what explains a
    /// client's unexpected reconnect.
    pub fn connection_events(&self) -> String {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("[WRN]")
                    || l.contains("[ERR]")
                    || l.contains("closed")
                    || l.contains("Slow Consumer")
                    || l.contains("Stale")
                    || l.contains("Error")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the process is running (it has not been killed or stopped, nor exited by itself).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the server at once (SIGKILL: no clean shutdown, as in a crash) and waits for it to exit.
    /// Nothing happens if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it has already exited; `wait` reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server cleanly: SIGTERM, then up to 5 s for it to exit, then SIGKILL.
    /// Nothing happens if it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + NATS_STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(NATS_POLL);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server if it is running, then starts it again on the same port with the same store
    /// and configuration, and waits until it accepts connections. The port may linger after the kill,
    /// so a server that exits at once (cannot bind) is started again, for up to 10 s.
    ///
    /// # Panics
    /// If it does not accept connections within 10 s (the panic carries the log).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + NATS_READY_TIMEOUT;
        loop {
            let mut child = self.spawn();
            match self.wait_ready(&mut child, deadline) {
                Ready::Accepting => {
                    self.child = Some(child);
                    return;
                }
                Ready::Exited if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                outcome => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "nats-server did not restart on port {} ({outcome:?}); log:\n{}",
                        self.port,
                        self.log()
                    );
                }
            }
        }
    }

    /// A temporary directory with the store directory and the log path in it.
    fn workspace() -> (TempDir, PathBuf, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix("acctmon-nats-")
            .tempdir()
            .expect("create a temporary directory");
        let store = dir.path().join("jetstream");
        std::fs::create_dir_all(&store).expect("create the store directory");
        let log = dir.path().join("nats-server.log");
        (dir, store, log)
    }

    fn launch(
        port: u16,
        dir: TempDir,
        store: PathBuf,
        log: PathBuf,
        args: Vec<OsString>,
    ) -> NatsServer {
        let mut server = NatsServer {
            binary: nats_server_binary(),
            args,
            port,
            child: None,
            log,
            store,
            dir,
        };
        let mut child = server.spawn();
        match server.wait_ready(&mut child, Instant::now() + NATS_READY_TIMEOUT) {
            Ready::Accepting => server.child = Some(child),
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "nats-server did not start on port {port} ({outcome:?}); command: {:?} {:?}; log:\n{}",
                    server.binary,
                    server.args,
                    server.log()
                );
            }
        }
        server
    }

    fn spawn(&self) -> Child {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open nats-server.log");
        let err = log.try_clone().expect("clone the log handle");
        Command::new(&self.binary)
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.binary))
    }

    /// Polls a TCP connect every 20 ms until the server accepts, exits or `deadline` passes.
    fn wait_ready(&self, child: &mut Child, deadline: Instant) -> Ready {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if !matches!(child.try_wait(), Ok(None)) {
                return Ready::Exited;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // Another process could hold the port: make sure ours is still the one running.
                return if matches!(child.try_wait(), Ok(None)) {
                    Ready::Accepting
                } else {
                    Ready::Exited
                };
            }
            if Instant::now() >= deadline {
                return Ready::TimedOut;
            }
            std::thread::sleep(NATS_POLL);
        }
    }
}

/// How waiting for a spawned server ended.
#[derive(Debug)]
enum Ready {
    Accepting,
    Exited,
    TimedOut,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The exchange simulator served in-process on `127.0.0.1:<free port>`, as the `acctmon-sim` binary
/// serves it (REST, WebSocket streams, `/healthz`, generated activity, faults, `/_sim/` admin API).
///
/// Needs a Tokio runtime. Dropping it aborts the server task; [`Sim::stop`] shuts it down gracefully.
#[derive(Debug)]
pub struct Sim {
    /// `http://127.0.0.1:<port>`: the REST base URL (the Binance `fapi` base).
    pub base: String,
    /// `127.0.0.1:<port>`: for WebSocket URLs (`ws://{addr}/private/ws?listenKey=…`).
    pub addr: String,
    /// An HTTP client for calls of your own.
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Sim {
    /// Starts a simulator with these command-line flags (as `acctmon-sim` takes them, e.g.
    /// `["--fills-per-sec", "0", "--account", "a"]`) on a free loopback port; it is serving when this
    /// returns.
    ///
    /// # Panics
    /// On invalid flags or when no port can be bound.
    pub async fn start(args: &[&str]) -> Sim {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener")
            .to_string();
        let mut all = vec!["--listen", addr.as_str()];
        all.extend_from_slice(args);
        let config = Config::from_args(all)
            .unwrap_or_else(|e| panic!("invalid simulator flags {args:?}: {e}"));
        // Fail here, not in the task, on a bad `--account`.
        if let Err(e) = config.account_specs() {
            panic!("invalid simulator flags {args:?}: {e}");
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(config, listener, async {
            let _ = stopped.await;
        }));
        Sim {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// The ground truth, `GET /_sim/state`: `{"accounts": [{"account": name, "wallets", "positions",
    /// "trades", …}]}`.
    ///
    /// # Panics
    /// On a failed request or a non-2xx answer.
    pub async fn state(&self) -> serde_json::Value {
        let r = self
            .http
            .get(format!("{}/_sim/state", self.base))
            .send()
            .await
            .expect("GET /_sim/state");
        Self::json("GET /_sim/state", r).await
    }

    /// `POST /_sim/<path_and_query>` (e.g. `"pause?account=a"`, `"activity?per_sec=50"`): its JSON.
    ///
    /// # Panics
    /// On a failed request or a non-2xx answer (with the body).
    pub async fn admin(&self, path_and_query: &str) -> serde_json::Value {
        let what = format!("POST /_sim/{path_and_query}");
        let r = self
            .http
            .post(format!("{}/_sim/{path_and_query}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        Self::json(&what, r).await
    }

    /// The API key of the simulator's account `name` (sent in `X-MBX-APIKEY`): `sim-key-<name>`.
    pub fn api_key(name: &str) -> String {
        format!("sim-key-{name}")
    }

    /// The secret that signs requests of the simulator's account `name`: `sim-secret-<name>`.
    pub fn api_secret(name: &str) -> String {
        format!("sim-secret-{name}")
    }

    /// Shuts the server down gracefully and waits (up to 5 s) for it to end.
    ///
    /// # Panics
    /// If it does not end in time or ended with an error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .expect("simulator stops within 5 s")
                .expect("simulator task ends without panicking")
                .expect("simulator serves without error");
        }
    }

    async fn json(what: &str, r: reqwest::Response) -> serde_json::Value {
        let status = r.status();
        let body = r
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
        assert!(status.is_success(), "{what}: HTTP {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_simulator_scheme() {
        assert_eq!(Sim::api_key("a"), acctmon_sim::server::api_key("a", 0).key);
        assert_eq!(Sim::api_secret("a"), "sim-secret-a");
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
