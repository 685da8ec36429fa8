//! The admin server over a real loopback listener.

use acctmon_service::{admin, health::Health};
use prometheus::{IntCounter, Registry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn admin_endpoints_over_loopback() {
    let registry = Registry::new();
    let counter = IntCounter::new("acctmon_test_events_total", "events seen").unwrap();
    registry.register(Box::new(counter.clone())).unwrap();
    counter.inc_by(5);
    let health = Health::new();
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(admin::serve(
        listener,
        registry,
        health.clone(),
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    let healthz = get("/healthz").await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.unwrap(), "ok");

    health.set("nats", false);
    let readyz = get("/readyz").await.unwrap();
    assert_eq!(readyz.status(), 503);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "ready": false, "checks": { "nats": false } })
    );

    health.set("nats", true);
    let readyz = get("/readyz").await.unwrap();
    assert_eq!(readyz.status(), 200);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "ready": true, "checks": { "nats": true } })
    );

    let metrics = get("/metrics").await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("acctmon_test_events_total 5")
    );

    shutdown.cancel();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    stopped.expect("server stops on cancel").unwrap().unwrap();
}
