//! The testkit against the real things: a `nats-server` spoken to over raw TCP (its `INFO` greeting,
//! and a subject mapping seen through `SUB`/`PUB`), killed, stopped and restarted on its port; the
//! simulator in-process, with its ground truth, admin API and keys.

// Tests panic on unexpected answers: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use acctmon_sim::auth::{Secret, sign};
use acctmon_sim::rest::now_ms;
use acctmon_testkit::{NatsServer, Sim, free_port, wait_until};

/// A connection to `port` and its first line, which a NATS server makes `INFO {…}`.
fn greet(port: u16) -> (BufReader<TcpStream>, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    (reader, line)
}

#[test]
fn nats_server_greets_dies_and_comes_back_on_its_port() {
    let mut nats = NatsServer::start();
    let port = nats.port();
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    assert!(nats.is_running());
    let (_, line) = greet(port);
    assert!(line.starts_with("INFO {"), "{line:?}");
    assert!(
        line.contains("\"jetstream\":true"),
        "JetStream is on: {line}"
    );
    assert!(nats.store_dir().is_dir());

    nats.kill();
    assert!(!nats.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after kill"
    );

    nats.restart();
    assert_eq!(nats.port(), port);
    let (_, line) = greet(port);
    assert!(line.starts_with("INFO {"), "{line:?}");

    // A clean stop, then back again.
    nats.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    nats.restart();
    assert!(greet(port).1.starts_with("INFO {"));
    assert!(nats.log().contains("Server is ready"), "{}", nats.log());
}

#[test]
fn nats_server_with_a_config_applies_its_subject_mapping() {
    let nats =
        NatsServer::with_config(r#"mappings = { "p.*": "q.{{partition(16,1)}}.{{wildcard(1)}}" }"#);
    let (mut reader, line) = greet(nats.port());
    assert!(line.starts_with("INFO {"), "{line:?}");
    assert!(line.contains("\"jetstream\":true"), "{line}");
    // Raw protocol: subscribe to the mapped subjects, publish on the source one, read it back.
    let mut w = reader.get_ref().try_clone().unwrap();
    w.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB q.*.* 1\r\nPUB p.abc 2\r\nhi\r\nPING\r\n")
        .unwrap();
    let mut msg = String::new();
    loop {
        msg.clear();
        reader.read_line(&mut msg).unwrap();
        assert!(!msg.starts_with("-ERR"), "{msg}");
        if msg.starts_with("MSG ") {
            break;
        }
    }
    // MSG <subject> <sid> <size>: the subject is q.<partition 0..16>.abc
    let subject = msg.split_whitespace().nth(1).unwrap();
    let parts: Vec<&str> = subject.split('.').collect();
    assert_eq!((parts.len(), parts[0], parts[2]), (3, "q", "abc"), "{msg}");
    assert!(parts[1].parse::<u8>().unwrap() < 16, "{msg}");
}

#[test]
fn free_port_gives_a_usable_port() {
    let port = free_port();
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[tokio::test]
async fn sim_serves_its_accounts_in_process() {
    let sim = Sim::start(&["--fills-per-sec", "0", "--account", "a"]).await;
    assert!(sim.base.starts_with("http://127.0.0.1:"));
    let state = sim.state().await;
    let accounts = state["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{state}");
    assert_eq!(accounts[0]["account"], "a");
    assert!(accounts[0]["trades"].as_array().unwrap().is_empty());

    // The keys sign requests the simulator accepts.
    let query = format!("timestamp={}", now_ms());
    let signature = sign(&Secret::new(Sim::api_secret("a")), &query);
    let r = sim
        .http
        .get(format!(
            "{}/fapi/v2/balance?{query}&signature={signature}",
            sim.base
        ))
        .header("X-MBX-APIKEY", Sim::api_key("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Admin calls, and waiting on the activity they start.
    assert_eq!(sim.admin("activity?per_sec=200").await["ok"], true);
    wait_until(Duration::from_secs(5), "the simulator trades", || async {
        !sim.state().await["accounts"][0]["trades"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    sim.admin("activity?per_sec=0").await;
    sim.stop().await;
}

#[tokio::test]
#[should_panic(expected = "HTTP 400")]
async fn sim_admin_panics_on_a_refused_call_with_the_body() {
    let sim = Sim::start(&["--fills-per-sec", "0", "--account", "a"]).await;
    sim.admin("pause?account=nobody").await;
}

#[tokio::test]
async fn wait_until_polls_until_the_condition_holds() {
    let calls = Arc::new(AtomicUsize::new(0));
    wait_until(Duration::from_secs(5), "the third call", || {
        let calls = Arc::clone(&calls);
        async move { calls.fetch_add(1, Ordering::SeqCst) >= 2 }
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
#[should_panic(expected = "waiting until never")]
async fn wait_until_panics_with_what_on_timeout() {
    wait_until(Duration::from_millis(100), "never", || async { false }).await;
}

#[test]
#[should_panic(expected = "did not start")]
fn nats_server_with_a_bad_config_panics_with_its_log() {
    let _ = NatsServer::with_config("mappings = {{{ not a config");
}
