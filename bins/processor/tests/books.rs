//! The processor against a real nats-server, the simulator and ingest: the books in KV equal the
//! exchange's, through kills, replicas joining and leaving, and a server restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use acctmon_testkit::NatsServer;
use support::*;

/// One test at a time: each runs a server, the simulator, ingest and processors on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generated activity plus bursts of market orders: about `orders × 4` fills, funding on the way.
async fn trade(sim: &acctmon_testkit::Sim, orders: u64, during: Duration) {
    sim.admin("activity?per_sec=300").await;
    let rounds = 4u64;
    for _ in 0..rounds {
        sim.admin(&format!("burst?orders={}", orders / rounds))
            .await;
        tokio::time::sleep(during / rounds as u32).await;
    }
    sim.admin("activity?per_sec=0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_books_converge_to_the_exchange_through_ingest_and_processor() {
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&nats, &sim).await;
    let mut processor = Processor::start(&nats, "one", "");
    processor.ready().await;

    trade(&sim, 2_800, Duration::from_secs(16)).await;
    let state = sim.state().await;
    let fills = sim_fills(&state);
    assert!(fills >= 10_000, "only {fills} fills");
    let funding_paid = state["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["funding"].as_str() != Some("0"));
    assert!(funding_paid, "no funding in the run: {state:#}");
    assert!(
        state["accounts"][2]["commission"].get("BNB").is_some(),
        "no BNB fees"
    );

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    converge(&nats, &sim, Duration::from_secs(60), &[&processor]).await;
    // Reported on RECON: each one is a disagreement the books found with a figure of the exchange, and
    // on this consistent stream there must be none.
    let reported = recon_reports(&js, "trading.recon.>").await;
    let history = match reported.first() {
        Some(first) => events_near(&js, first).await,
        None => String::new(),
    };
    assert!(
        reported.is_empty(),
        "{} discrepancies reported on a consistent stream: {:#?}\n{history}\n{}\ningest:\n{}\nnats-server:\n{}",
        reported.len(),
        &reported[..reported.len().min(30)],
        processor.explain().await,
        ingest_warnings(),
        nats.connection_events()
    );

    // The books rebuilt from EVENTS alone equal the live books in KV, once nothing moves: ingest stopped
    // (the exchange keeps paying funding) and the processor past its settle grace.
    ingest.stop().await;
    let applied = || processor.metric("acctmon_processor_events_applied_total");
    let mut last = applied().await;
    loop {
        tokio::time::sleep(Duration::from_secs(7)).await;
        let now = applied().await;
        if now == last {
            break;
        }
        last = now;
    }
    for account in ACCOUNTS {
        let rebuilt = replay(&nats, account, true).await;
        let (live, differences) = rebuilt.diff.expect("compared");
        assert!(live.applied_seq > 0);
        assert_eq!(differences, vec![], "replay --diff of {account}");
    }
    assert!(count(&js, "PNL", "trading.pnl.*.summary").await > 0);
    assert!(
        processor
            .metric("acctmon_processor_events_applied_total")
            .await
            >= fills as f64
    );
    // A difference planted in KV is found (the processor stopped first, so that it cannot overwrite it).
    assert!(processor.terminate().success());
    let positions = js.get_key_value("positions").await.unwrap();
    let key = "a.BTCUSDT.BOTH";
    let mut view: acctmon_bus::pnl::PositionPnl =
        rmp_serde::from_slice(&positions.get(key).await.unwrap().expect("a BTCUSDT leg")).unwrap();
    view.qty += rust_decimal::Decimal::ONE;
    positions
        .put(key, rmp_serde::to_vec_named(&view).unwrap().into())
        .await
        .unwrap();
    let (_, differences) = replay(&nats, "a", true).await.diff.expect("compared");
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert_eq!(
        (differences[0].what.as_str(), differences[0].field),
        (key, "qty")
    );
    assert_eq!(
        differences[0]
            .live
            .parse::<rust_decimal::Decimal>()
            .unwrap()
            - differences[0]
                .replayed
                .parse::<rust_decimal::Decimal>()
                .unwrap(),
        rust_decimal::Decimal::ONE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_books_survive_kills_replicas_and_a_server_restart() {
    let _serial = SERIAL.lock().await;
    let mut nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&nats, &sim).await;
    let mut first = Processor::start(&nats, "one", "");
    first.ready().await;

    sim.admin("activity?per_sec=300").await;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random_ms = |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo)
    };
    // Five SIGKILLs at random moments, each followed by a restart.
    for _ in 0..5 {
        sim.admin("burst?orders=300").await;
        tokio::time::sleep(Duration::from_millis(random_ms(200, 1500))).await;
        first.kill9();
        tokio::time::sleep(Duration::from_millis(random_ms(50, 500))).await;
        first.restart();
    }
    // A second and a third replica join, take their share, and leave (one gracefully, one killed).
    let mut second = Processor::start(&nats, "two", "");
    let mut third = Processor::start(&nats, "three", "");
    second.ready().await;
    third.ready().await;
    for _ in 0..3 {
        sim.admin("burst?orders=300").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(
        second.terminate().success(),
        "SIGTERM is a clean exit: {}",
        second.log()
    );
    third.kill9();
    sim.admin("burst?orders=300").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // nats-server restarts once under load.
    nats.restart();
    sim.admin("burst?orders=300").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.admin("activity?per_sec=0").await;

    let state = sim.state().await;
    let fills = sim_fills(&state);
    assert!(fills >= 10_000, "only {fills} fills");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    converge(
        &nats,
        &sim,
        Duration::from_secs(90),
        &[&first, &second, &third],
    )
    .await;
    let reported = recon_reports(&js, "trading.recon.>").await;
    eprintln!(
        "discrepancies reported: {} {:#?}",
        reported.len(),
        &reported[..reported.len().min(12)]
    );
    ingest.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_drift_is_reported_on_recon_and_the_books_adopt_the_exchange() {
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let sim = sim().await;
    let ingest = Ingest::start(&nats, &sim).await;
    let processor = Processor::start(&nats, "one", "");
    processor.ready().await;
    trade(&sim, 200, Duration::from_secs(2)).await;

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    converge(&nats, &sim, Duration::from_secs(30), &[&processor]).await;
    // The exchange changes a wallet with no event; the next balance row shows it.
    let before = wallet_reports(&js).await.len();
    sim.admin("drift?account=a&asset=USDT&amount=-12.5").await;
    trade(&sim, 40, Duration::from_secs(1)).await;
    wait_for_recon(&js, before).await;
    converge(&nats, &sim, Duration::from_secs(30), &[&processor]).await;

    // Reported, and adopted: what the books corrected since the drift adds up to it (a row the books
    // judged between two fills of one millisecond is reported and put right by the next one).
    let reports = wallet_reports(&js).await;
    let since: Vec<_> = reports[before..].iter().collect();
    assert!(!since.is_empty());
    assert!(since.iter().all(|r| r.subject == "USDT"));
    let corrected: rust_decimal::Decimal = since.iter().map(|r| r.exchange - r.ours).sum();
    assert_eq!(corrected, "-12.5".parse().unwrap(), "{since:#?}");
    ingest.stop().await;
}

async fn wait_for_recon(js: &async_nats::jetstream::Context, before: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while wallet_reports(js).await.len() <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no wallet discrepancy on RECON"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every `trading.recon.a.wallet` report so far, in order.
async fn wallet_reports(js: &async_nats::jetstream::Context) -> Vec<acctmon_bus::pnl::ReconReport> {
    recon_reports(js, "trading.recon.a.wallet").await
}
