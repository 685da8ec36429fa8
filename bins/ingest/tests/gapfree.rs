//! Ingest against a real nats-server and the simulator: the fills on `EVENTS` are exactly the
//! exchange's trade list, through every fault the simulator can inject.

// Integration tests: a panic with its message is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use acctmon_testkit::free_port as admin_port;
use acctmon_testkit::{NatsServer, Sim};
use support::{Ingest, assert_exact_trade_list, config};

const ACCOUNTS: [&str; 3] = ["a", "b", "c"];

async fn sim() -> Sim {
    Sim::start(&[
        "--fills-per-sec",
        "0",
        "--weight-limit",
        "1000000",
        "--account",
        "a",
        "--account",
        "b:hedge",
        "--account",
        "c:bnb",
    ])
    .await
}

async fn trade_for(sim: &Sim, per_sec: u32, time: Duration) {
    sim.admin(&format!("activity?per_sec={per_sec}")).await;
    tokio::time::sleep(time).await;
    sim.admin("activity?per_sec=0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_accounts_fills_arrive_exactly_once_in_exchange_order() {
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&config(&nats.url(), &sim, &ACCOUNTS, admin_port())).await;
    trade_for(&sim, 1500, Duration::from_secs(6)).await;
    let n = assert_exact_trade_list(&nats.url(), &sim, &ACCOUNTS, true).await;
    assert!(
        n >= 3 * 1000,
        "only {n} fills: not the few thousand per account the test means"
    );
    let metrics = ingest.metrics().await;
    assert!(metrics.contains("acctmon_ingest_events_total{account=\"b\",kind=\"fill\"}"));
    // Each account's `heard` notices: after one, nothing stamped at or before its time comes.
    let events = support::read_events(&nats.url()).await;
    for account in ACCOUNTS {
        let mut heard = None;
        let mut notices = 0;
        for (_, envelope) in &events {
            let event = &envelope.event;
            if event.account().map(|a| a.as_str()) != Some(account) {
                continue;
            }
            match event {
                acctmon_domain::Event::Stream(n)
                    if n.status == acctmon_domain::StreamStatus::Heard =>
                {
                    assert!(heard < Some(n.time), "heard notices move forward");
                    heard = Some(n.time);
                    notices += 1;
                }
                acctmon_domain::Event::Fill(f) => assert!(
                    heard.is_none_or(|h| f.time > h),
                    "fill {} of {account} stamped {:?} came after a notice that everything up to {heard:?} was published",
                    f.trade_id,
                    f.time
                ),
                _ => {}
            }
        }
        assert!(
            notices >= 3,
            "{notices} heard notices of {account} in 6 s of trading"
        );
    }
    // Mark prices of the traded symbols reached KV.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let marks = js.get_key_value("marks").await.unwrap();
    acctmon_testkit::wait_until(Duration::from_secs(10), "a mark price in KV", || async {
        marks.get("BTCUSDT").await.ok().flatten().is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_stay_exact_through_disconnects_expiry_errors_kills_and_a_server_restart() {
    let mut nats = NatsServer::start();
    let sim = sim().await;
    let mut ingest = Ingest::start(&config(&nats.url(), &sim, &ACCOUNTS, admin_port())).await;
    sim.admin("activity?per_sec=600").await;
    sim.admin("duplicate?pct=20").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    sim.admin("drop").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    sim.admin("expire?account=b").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    sim.admin("rest-error?status=503&count=3").await;
    sim.admin("drop?account=a").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    sim.admin("rest-error?status=429&count=2").await;
    sim.admin("drop?account=c").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    ingest.kill_and_restart().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    nats.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ingest.kill_and_restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.admin("duplicate?pct=0").await;
    sim.admin("activity?per_sec=0").await;
    let n = assert_exact_trade_list(&nats.url(), &sim, &ACCOUNTS, true).await;
    assert!(n >= 1000, "only {n} fills");
    let metrics = ingest.metrics().await;
    assert!(metrics.contains("acctmon_ingest_gaps_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lost_on_an_open_socket_are_found_by_the_audit() {
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&config(&nats.url(), &sim, &["a", "b"], admin_port())).await;
    sim.admin("activity?per_sec=400").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.admin("pause?account=a").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sim.admin("resume?account=a").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    sim.admin("activity?per_sec=0").await;
    // Fills missed while paused come after newer live ones, so exchange order is not asked here.
    let n = assert_exact_trade_list(&nats.url(), &sim, &["a", "b"], false).await;
    assert!(n > 100, "only {n} fills");
    let metrics = ingest.metrics().await;
    let backfilled = metrics
        .lines()
        .find(|l| l.starts_with("acctmon_ingest_backfilled_fills_total{account=\"a\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        backfilled > 0,
        "the paused fills came from REST:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_income_history_does_not_hold_up_live_fills() {
    const DELAY_MS: i64 = 3000;
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&config(&nats.url(), &sim, &["a", "b"], admin_port())).await;
    // Ready means both user-data streams are live, their snapshots read.
    let readyz = acctmon_testkit::readiness(&ingest.admin).await;
    for check in ["nats", "nats_events"] {
        assert_eq!(readyz["checks"][check], true, "{check}: {readyz}");
    }
    for a in ["a", "b"] {
        assert_eq!(
            readyz["checks"][format!("stream:{a}")],
            true,
            "ready before account {a} was live: {readyz}"
        );
    }
    // Every REST answer (the audits' income pages among them) now takes 3 s; audits run every second.
    sim.admin(&format!("rest-delay?ms={DELAY_MS}")).await;
    trade_for(&sim, 200, Duration::from_secs(5)).await;
    sim.admin("rest-delay?ms=0").await;
    let n = assert_exact_trade_list(&nats.url(), &sim, &["a", "b"], true).await;
    assert!(n > 500, "only {n} fills");
    let live: Vec<(u64, i64)> = support::read_stored_events(&nats.url())
        .await
        .into_iter()
        .filter_map(|(_, envelope, stored)| match envelope.event {
            acctmon_domain::Event::Fill(f) if f.source != acctmon_domain::FillSource::Rest => {
                Some((f.trade_id, stored - f.time.0))
            }
            _ => None,
        })
        .collect();
    let (worst_id, worst) = live.iter().copied().max_by_key(|(_, lag)| *lag).unwrap();
    assert!(
        worst < DELAY_MS * 2 / 3,
        "live fill {worst_id} reached EVENTS {worst} ms after the exchange made it: it waited for a \
         REST answer; log:\n{}",
        ingest.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_account_publish_each_fill_once() {
    let nats = NatsServer::start();
    let sim = sim().await;
    let first = Ingest::start(&config(&nats.url(), &sim, &["b"], admin_port())).await;
    let second = Ingest::start(&config(&nats.url(), &sim, &["b"], admin_port())).await;
    trade_for(&sim, 800, Duration::from_secs(3)).await;
    let n = assert_exact_trade_list(&nats.url(), &sim, &["b"], true).await;
    assert!(n > 300, "only {n} fills");
    // Both published; JetStream kept one of each.
    let dups = |m: String| {
        m.lines()
            .find(|l| l.starts_with("acctmon_ingest_duplicates_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = dups(first.metrics().await) + dups(second.metrics().await);
    assert!(
        total as usize >= n / 2,
        "duplicates dropped: {total} for {n} fills"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_ingest_cleanly() {
    let nats = NatsServer::start();
    let sim = sim().await;
    let mut ingest = Ingest::start(&config(&nats.url(), &sim, &["a"], admin_port())).await;
    let status = ingest.stop();
    assert!(status.success(), "exit {status:?}; log:\n{}", ingest.log());
}
