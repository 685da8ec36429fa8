//! `acctmon init` and `acctmon tail` against a real nats-server.

// Integration tests: a panic with its message is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

#[test]
fn init_is_idempotent_and_tail_prints_stored_events_as_json_lines() {
    let nats = acctmon_testkit::NatsServer::start();
    let url = nats.url();
    let first = Command::cargo_bin("acctmon")
        .unwrap()
        .args(["init", "--nats-url", &url])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8(first.stdout).unwrap();
    assert!(
        text.contains("created   EVENTS") && text.contains("created   KV_marks"),
        "{text}"
    );
    let second = Command::cargo_bin("acctmon")
        .unwrap()
        .args(["init", "--nats-url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8(second.stdout).unwrap();
    assert!(
        !text.contains("created") && text.contains("unchanged EVENTS"),
        "{text}"
    );

    // One event on EVENTS, published as ingest does.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let event = acctmon_domain::Event::Stream(acctmon_domain::StreamNotice {
            account: acctmon_domain::Account::new("main").unwrap(),
            status: acctmon_domain::StreamStatus::Connected,
            time: acctmon_domain::Timestamp(1_700_000_000_000),
        });
        let payload = acctmon_bus::Envelope::new(event, 1_700_000_000_001)
            .encode()
            .unwrap();
        js.publish("trading.events.5.main.stream", payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let out = Command::cargo_bin("acctmon")
        .unwrap()
        .args([
            "tail",
            "trading.events.>",
            "--nats-url",
            &url,
            "--from-seq",
            "1",
            "--count",
            "1",
        ])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["subject"], "trading.events.5.main.stream");
    assert_eq!(line["seq"], 1);
    assert_eq!(line["data"]["schema"], "stream/1");
    assert_eq!(line["data"]["account"], "main");
    assert_eq!(line["data"]["status"]["type"], "connected");
}

#[test]
fn the_topology_file_mirrors_the_code() {
    let out = Command::cargo_bin("acctmon")
        .unwrap()
        .args(["init", "--print"])
        .output()
        .unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../nats/topology.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        printed, file,
        "nats/topology.json is stale: regenerate with `acctmon init --print`"
    );
}
