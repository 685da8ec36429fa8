//! `acctmon demo`: the whole pipeline on loopback for a first look, in one command.
//!
//! Starts what is missing as child processes: `nats-server` with JetStream in a temporary directory,
//! `acctmon-sim` with generated activity (or nothing, when a real Binance account is configured in the
//! environment), `acctmon-ingest` and `acctmon-processor`; waits until each says it is ready; prints
//! what to look at; and on Ctrl-C, SIGTERM or the end of `--for` stops them all (SIGTERM, SIGINT for
//! nats-server, then SIGKILL after a grace period) and removes the temporary directory.
//!
//! Each child runs in its own process group, so a Ctrl-C typed in the terminal reaches only the demo,
//! which then stops the children in order: ingest, processor and simulator first, NATS last, since the
//! others drain into it. Children are also killed if the demo fails or panics; only a SIGKILL of the
//! demo itself leaves them running. Secrets stay in the environment: the API key and secret are
//! never written to a file, printed or logged here.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use acctmon_bus::Topology;
use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use crate::bus::NatsArgs;

/// Accounts of the simulated exchange: one-way, hedge mode, fees paid in BNB.
const SIM_ACCOUNTS: [&str; 3] = ["main", "hedged:hedge", "bnb-fees:bnb"];
/// The alias of the real account followed with keys from the environment.
const REAL_ACCOUNT: &str = "main";
/// Environment variables holding a real account's API key and secret.
const KEY_ENV: &str = "BINANCE_API_KEY";
const SECRET_ENV: &str = "BINANCE_API_SECRET";
/// How long a child gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a child gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often children and readiness are polled.
const POLL: Duration = Duration::from_millis(200);

/// Arguments of `acctmon demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use the NATS server at this URL instead of starting one. A loopback URL nobody answers on gets
    /// a nats-server started on its port.
    #[arg(long = "nats-url", value_name = "URL")]
    pub nats_url: Option<String>,
    /// Stop by itself this long after everything is ready (`30s`, `10m`); default: run until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION")]
    pub run_for: Option<humantime::Duration>,
    /// Generated actions per second on the simulator (mostly orders of one to three fills).
    #[arg(long, default_value_t = 5)]
    pub fills_per_sec: u32,
    /// Use the simulator even when BINANCE_API_KEY and BINANCE_API_SECRET are set.
    #[arg(long)]
    pub simulate: bool,
    /// Binance environment of the real account (with BINANCE_API_KEY and BINANCE_API_SECRET).
    #[arg(long, value_enum, default_value_t = Venue::Production)]
    pub venue: Venue,
}

/// Where the real account lives (ingest's `venue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Venue {
    /// `fapi.binance.com`.
    Production,
    /// Binance's demo trading (`demo-fapi.binance.com`).
    Demo,
    /// The legacy futures testnet.
    Testnet,
}

impl Venue {
    fn as_str(self) -> &'static str {
        match self {
            Venue::Production => "production",
            Venue::Demo => "demo",
            Venue::Testnet => "testnet",
        }
    }
}

/// `acctmon demo`.
pub async fn demo(args: &DemoArgs) -> Result<ExitCode> {
    let signals = Signals::install()?;
    let real = real_account(args)?;
    let binaries = Binaries::find(real.is_none())?;
    let dir = tempfile::Builder::new()
        .prefix("acctmon-demo-")
        .tempdir()
        .context("create a temporary directory")?;
    let mut procs = Procs::default();
    let outcome = run(
        args,
        real,
        &binaries,
        dir.path(),
        &mut procs,
        signals.clone(),
    )
    .await;
    // Stopped and cleaned up whatever happened; an error is reported by the caller, after this.
    procs.stop(signals).await;
    let path = dir.path().display().to_string();
    dir.close()
        .with_context(|| format!("remove the temporary directory {path}"))?;
    println!("removed {path}");
    outcome.map(|()| ExitCode::SUCCESS)
}

/// A real Binance account configured in the environment.
#[derive(Debug, Clone, Copy)]
struct RealAccount {
    venue: Venue,
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

fn real_account(args: &DemoArgs) -> Result<Option<RealAccount>> {
    if args.simulate {
        return Ok(None);
    }
    match (set(KEY_ENV), set(SECRET_ENV)) {
        (true, true) => Ok(Some(RealAccount { venue: args.venue })),
        (false, false) => Ok(None),
        (key, _) => {
            let (have, missing) = if key {
                (KEY_ENV, SECRET_ENV)
            } else {
                (SECRET_ENV, KEY_ENV)
            };
            bail!(
                "{have} is set but {missing} is not: set both to follow a real account, or pass --simulate"
            )
        }
    }
}

/// The executables the demo runs.
struct Binaries {
    sim: Option<PathBuf>,
    ingest: PathBuf,
    processor: PathBuf,
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

impl Binaries {
    /// Looks for `acctmon-*` next to this executable, then on PATH.
    fn find(with_sim: bool) -> Result<Binaries> {
        let here = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let dirs: Vec<PathBuf> = here.iter().cloned().chain(path_dirs()).collect();
        let find = |name: &str| -> Result<PathBuf> {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .with_context(|| {
                    format!(
                        "{name} not found next to this executable ({}) nor on PATH: build every binary first with `cargo build --release --workspace` and run target/release/acctmon demo",
                        here.as_deref().map_or_else(|| "?".to_owned(), |d| d.display().to_string())
                    )
                })
        };
        Ok(Binaries {
            sim: if with_sim {
                Some(find("acctmon-sim")?)
            } else {
                None
            },
            ingest: find("acctmon-ingest")?,
            processor: find("acctmon-processor")?,
        })
    }
}

/// `nats-server` on PATH, else where Debian and manual installs put it.
fn nats_server_binary() -> Result<PathBuf> {
    path_dirs()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .context(
            "nats-server not found on PATH nor in /usr/sbin: install it (Debian/Ubuntu: `sudo apt-get install nats-server`; `make demo` does it) or pass --nats-url of a running server",
        )
}

/// Counts SIGINT and SIGTERM from the moment it is installed.
#[derive(Clone)]
struct Signals(watch::Receiver<u32>);

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handle SIGTERM")?;
        let (tx, rx) = watch::channel(0u32);
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    got = interrupt.recv() => got,
                    got = terminate.recv() => got,
                };
                // `None`: the runtime is shutting down, no signal can come any more.
                if got.is_none() {
                    break;
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Ok(Signals(rx))
    }

    fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Waits for the next signal (forever once none can come).
    async fn next(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Why the demo stopped before its end.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// One child process and its log.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Whether it has exited (reaping it if so).
    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends `signal` to its process group (it leads its own).
    fn signal(&mut self, signal: rustix::process::Signal) {
        if self.exited().is_none() {
            let group = rustix::process::Pid::from_child(&self.child);
            // It may exit between the check and the signal; then there is nothing to do.
            let _ = rustix::process::kill_process_group(group, signal);
        }
    }

    /// The signal that stops it cleanly: SIGTERM, but SIGINT for nats-server, which shuts down the
    /// same way on both and exits with status 0 only on SIGINT.
    fn stop_signal(&self) -> rustix::process::Signal {
        if self.name == "nats-server" {
            rustix::process::Signal::INT
        } else {
            rustix::process::Signal::TERM
        }
    }

    /// The last `n` lines of its log.
    fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// An error saying it exited, with the end of its log on stderr.
    fn died(&self, status: ExitStatus) -> anyhow::Error {
        eprintln!(
            "--- the end of {}'s log ---\n{}\n---",
            self.name,
            self.tail(30)
        );
        anyhow::anyhow!("{} exited unexpectedly ({status})", self.name)
    }
}

/// The children, in start order. Dropping kills those still running.
#[derive(Default)]
struct Procs(Vec<Proc>);

impl Procs {
    /// Starts `program` in its own process group with its output in `<dir>/<log>`, without the
    /// `ACCTMON_*` variables of this environment (a demo does not pick up a deployment's settings).
    fn spawn(
        &mut self,
        name: &'static str,
        program: &Path,
        args: &[OsString],
        dir: &Path,
    ) -> Result<usize> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("create {name}.log"))?;
        let err = out.try_clone().context("clone a log handle")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("ACCTMON_") {
                command.env_remove(var);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        println!("started {name} (pid {}), log {name}.log", child.id());
        self.0.push(Proc {
            name,
            child,
            log,
            status: None,
        });
        Ok(self.0.len() - 1)
    }

    /// Fails if a child has exited.
    fn check(&mut self) -> Result<()> {
        for p in &mut self.0 {
            if let Some(status) = p.exited() {
                return Err(p.died(status));
            }
        }
        Ok(())
    }

    /// Polls until `ready` holds for child `i`, failing if any child exits, a signal comes or
    /// [`READY_TIMEOUT`] passes.
    async fn wait_ready<F, Fut>(
        &mut self,
        i: usize,
        signals: &Signals,
        what: &str,
        mut ready: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if signals.count() > 0 {
                return Err(Interrupted.into());
            }
            self.check()?;
            if ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let p = &self.0[i];
                eprintln!("--- the end of {}'s log ---\n{}\n---", p.name, p.tail(30));
                bail!(
                    "{} was not {what} after {}s",
                    p.name,
                    READY_TIMEOUT.as_secs()
                );
            }
            sleep(POLL).await;
        }
    }

    /// Stops every child: SIGTERM to all but NATS (the first child when the demo started it, which the
    /// others drain into), then NATS; SIGKILL for those still running after [`STOP_TIMEOUT`] or when
    /// another signal comes meanwhile.
    async fn stop(&mut self, mut signals: Signals) {
        let first = signals.count();
        let nats_first = self.0.first().is_some_and(|p| p.name == "nats-server");
        let split = usize::from(nats_first);
        let (nats, others) = self.0.split_at_mut(split);
        for group in [others, nats] {
            if group.iter_mut().all(|p| p.exited().is_some()) {
                continue;
            }
            for p in group.iter_mut() {
                p.signal(p.stop_signal());
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while group.iter_mut().any(|p| p.exited().is_none()) {
                let hurry = signals.count() > first || Instant::now() >= deadline;
                if hurry {
                    for p in group.iter_mut() {
                        p.signal(rustix::process::Signal::KILL);
                    }
                }
                tokio::select! {
                    () = sleep(POLL) => {}
                    () = signals.next() => {}
                }
            }
            for p in group.iter_mut() {
                if let Some(status) = p.exited() {
                    println!("stopped {} ({status})", p.name);
                }
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if p.exited().is_none() {
                p.signal(rustix::process::Signal::KILL);
                let _ = p.child.wait();
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (another process could take it before it is used; rare on loopback).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("bind 127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `host` and `port` of a NATS URL (`nats://user:pass@host:4222`; port 4222 when absent).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => {
            Some((host.to_owned(), port.parse().ok()?))
        }
        _ if !authority.is_empty() => Some((authority.to_owned(), 4222)),
        _ => None,
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.starts_with("127.")
}

async fn accepts(host: &str, port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((host, port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

async fn http_ok(http: &reqwest::Client, url: &str) -> bool {
    http.get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Everything between the start and the stop; the caller stops what was started whatever happens.
async fn run(
    args: &DemoArgs,
    real: Option<RealAccount>,
    binaries: &Binaries,
    dir: &Path,
    procs: &mut Procs,
    mut signals: Signals,
) -> Result<()> {
    match run_inner(args, real, binaries, dir, procs, &signals).await {
        Err(e) if e.is::<Interrupted>() => return Ok(()),
        other => other?,
    }
    let deadline = args.run_for.map(|d| Instant::now() + Duration::from(d));
    loop {
        let tick = match deadline {
            Some(d) if Instant::now() >= d => {
                println!("acctmon demo: --for elapsed, stopping");
                return Ok(());
            }
            Some(d) => POLL.min(d - Instant::now()),
            None => POLL,
        };
        tokio::select! {
            () = signals.next() => {
                println!("acctmon demo: stopping");
                return Ok(());
            }
            () = sleep(tick) => procs.check()?,
        }
    }
}

async fn run_inner(
    args: &DemoArgs,
    real: Option<RealAccount>,
    binaries: &Binaries,
    dir: &Path,
    procs: &mut Procs,
    signals: &Signals,
) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("build an HTTP client")?;

    // NATS: the one given if it answers, else ours.
    let (nats_url, ours) = match &args.nats_url {
        Some(url) => {
            let (host, port) =
                host_port(url).with_context(|| format!("`{url}` is not a NATS URL"))?;
            if accepts(&host, port).await {
                println!("using NATS at {url}");
                (url.clone(), false)
            } else if is_loopback(&host) {
                start_nats(procs, dir, port, signals).await?;
                (url.clone(), true)
            } else {
                bail!("cannot reach NATS at {url}");
            }
        }
        None => {
            let port = free_port()?;
            start_nats(procs, dir, port, signals).await?;
            (format!("nats://127.0.0.1:{port}"), true)
        }
    };
    let nats = NatsArgs {
        urls: vec![nats_url.clone()],
    };
    let client = nats.connect().await?;
    let report = Topology::default()
        .ensure(&async_nats::jetstream::new(client.clone()))
        .await
        .context("create the JetStream topology")?;
    println!(
        "topology ready ({} streams and buckets created)",
        report.created.len()
    );
    drop(client);

    let mut ingest_args = os(&["--nats-url", &nats_url]);
    let sim_base = match (&binaries.sim, real) {
        (Some(sim), None) => {
            let port = free_port()?;
            let listen = format!("127.0.0.1:{port}");
            let mut sim_args = os(&[
                "--listen",
                &listen,
                "--fills-per-sec",
                &args.fills_per_sec.to_string(),
            ]);
            for a in SIM_ACCOUNTS {
                sim_args.extend(os(&["--account", a]));
            }
            let i = procs.spawn("acctmon-sim", sim, &sim_args, dir)?;
            let base = format!("http://{listen}");
            let healthz = format!("{base}/healthz");
            procs
                .wait_ready(i, signals, "serving", || http_ok(&http, &healthz))
                .await?;
            ingest_args.extend(os(&["--sim", &base]));
            for a in SIM_ACCOUNTS {
                let name = a.split(':').next().unwrap_or(a);
                ingest_args.extend(os(&["--sim-account", name]));
            }
            Some(base)
        }
        _ => {
            let venue = real.map_or(Venue::Production, |r| r.venue);
            // Names of the variables only: ingest reads the values from its environment.
            let config = format!(
                "[[accounts]]\nname = \"{REAL_ACCOUNT}\"\nvenue = \"{}\"\napi_key_env = \"{KEY_ENV}\"\napi_secret_env = \"{SECRET_ENV}\"\n",
                venue.as_str()
            );
            let path = dir.join("ingest.toml");
            std::fs::write(&path, config).context("write ingest.toml")?;
            ingest_args.push(OsString::from("--config"));
            ingest_args.push(path.into_os_string());
            println!(
                "following Binance account `{REAL_ACCOUNT}` ({}) with the API key in {KEY_ENV} (read only: acctmon places no order)",
                venue.as_str()
            );
            None
        }
    };

    let ingest_admin = format!("127.0.0.1:{}", free_port()?);
    ingest_args.extend(os(&["--admin-listen", &ingest_admin]));
    let ingest = procs.spawn("acctmon-ingest", &binaries.ingest, &ingest_args, dir)?;
    let processor_admin = format!("127.0.0.1:{}", free_port()?);
    let processor = procs.spawn(
        "acctmon-processor",
        &binaries.processor,
        &os(&[
            "--nats-url",
            &nats_url,
            "--admin-listen",
            &processor_admin,
            "--instance",
            "demo",
        ]),
        dir,
    )?;
    for (i, admin, what) in [
        (
            ingest,
            &ingest_admin,
            "ready (NATS connected, every account's stream up)",
        ),
        (processor, &processor_admin, "ready (partitions owned)"),
    ] {
        let readyz = format!("http://{admin}/readyz");
        procs
            .wait_ready(i, signals, what, || http_ok(&http, &readyz))
            .await?;
    }
    print!(
        "{}",
        banner(
            &nats_url,
            ours,
            sim_base.as_deref(),
            &ingest_admin,
            &processor_admin,
            dir,
            args.run_for
        )
    );
    Ok(())
}

/// Starts `nats-server` with JetStream on `127.0.0.1:<port>`, its store in `<dir>/nats`, and waits
/// until it accepts connections.
async fn start_nats(procs: &mut Procs, dir: &Path, port: u16, signals: &Signals) -> Result<()> {
    let binary = nats_server_binary()?;
    let store = dir.join("nats");
    std::fs::create_dir_all(&store).context("create the NATS store directory")?;
    let mut args = os(&["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"]);
    args.push(store.into_os_string());
    let i = procs.spawn("nats-server", &binary, &args, dir)?;
    procs
        .wait_ready(i, signals, "accepting connections", || {
            accepts("127.0.0.1", port)
        })
        .await
}

/// How the user calls this program, for the commands printed (`acctmon` when it is on PATH).
fn me() -> String {
    std::env::args_os().next().map_or_else(
        || "acctmon".to_owned(),
        |a| a.to_string_lossy().into_owned(),
    )
}

// Writing to a String cannot fail: the `fmt::Result`s below are ignored on purpose.
fn banner(
    nats: &str,
    ours: bool,
    sim: Option<&str>,
    ingest_admin: &str,
    processor_admin: &str,
    dir: &Path,
    run_for: Option<humantime::Duration>,
) -> String {
    let me = me();
    let mut s = String::from("\nacctmon demo: ready\n");
    let _ = writeln!(
        s,
        "  NATS       {nats}{}",
        if ours {
            "  (started here, store in the temporary directory)"
        } else {
            ""
        }
    );
    if let Some(sim) = sim {
        let _ = writeln!(
            s,
            "  simulator  {sim}  (accounts main, hedged in hedge mode, bnb-fees paying fees in BNB)"
        );
    }
    let _ = writeln!(s, "  ingest     http://{ingest_admin}/metrics");
    let _ = writeln!(s, "  processor  http://{processor_admin}/metrics");
    let _ = writeln!(s, "  logs       {}  (removed on exit)", dir.display());
    let _ = writeln!(s, "\nLook at:");
    let _ = writeln!(s, "  {me} status --nats-url {nats}");
    let _ = writeln!(s, "  {me} status --nats-url {nats} --account main --all");
    let _ = writeln!(s, "  {me} tail 'trading.pnl.>' --nats-url {nats}");
    if let Some(sim) = sim {
        let _ = writeln!(
            s,
            "  curl -s {sim}/_sim/state        # the exchange's own figures"
        );
        let _ = writeln!(
            s,
            "  curl -s -X POST '{sim}/_sim/burst?orders=200'   # a burst of orders"
        );
    }
    match run_for {
        Some(d) => {
            let _ = writeln!(s, "\nStops by itself in {d}, or at Ctrl-C.");
        }
        None => {
            let _ = writeln!(s, "\nCtrl-C stops everything.");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_urls_give_host_and_port() {
        assert_eq!(
            host_port("nats://127.0.0.1:4333"),
            Some(("127.0.0.1".into(), 4333))
        );
        assert_eq!(
            host_port("nats://user:pw@localhost"),
            Some(("localhost".into(), 4222))
        );
        assert_eq!(
            host_port("tls://nats-1.example:4222/"),
            Some(("nats-1.example".into(), 4222))
        );
        assert_eq!(host_port("nats://"), None);
        assert!(is_loopback("127.0.0.1") && is_loopback("localhost"));
        assert!(!is_loopback("nats-1.example"));
    }
}
