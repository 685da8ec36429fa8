//! The flags every service takes, layered over its configuration file.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use acctmon_service::process::ServiceArgs;
use clap::Parser;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct Nats {
    urls: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct Config {
    nats: Nats,
    admin_listen: SocketAddr,
    log_format: String,
    instance: Option<String>,
    batch_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: Nats::default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            log_format: "text".into(),
            instance: None,
            batch_max: 10,
        }
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    #[arg(long)]
    instance: Option<String>,
}

#[derive(Serialize)]
struct Own<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
}

#[test]
fn flags_beat_the_file_and_absent_flags_leave_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.toml");
    std::fs::write(
        &file,
        "admin_listen = \"127.0.0.1:9200\"\nlog_format = \"json\"\ninstance = \"from-file\"\nbatch_max = 7\n[nats]\nurls = [\"nats://file:4222\"]\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();

    let from_file = Config {
        nats: Nats {
            urls: vec!["nats://file:4222".into()],
        },
        admin_listen: SocketAddr::from(([127, 0, 0, 1], 9200)),
        log_format: "json".into(),
        instance: Some("from-file".into()),
        batch_max: 7,
    };
    assert_eq!(load(&["--config", path]), from_file);

    let flags = [
        "--config",
        path,
        "--nats-url",
        "nats://a:4222",
        "--nats-url",
        "nats://b:4222",
        "--admin-listen",
        "127.0.0.1:9300",
        "--log-format",
        "text",
        "--instance",
        "from-flag",
    ];
    let from_flags = Config {
        nats: Nats {
            urls: vec!["nats://a:4222".into(), "nats://b:4222".into()],
        },
        admin_listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
        log_format: "text".into(),
        instance: Some("from-flag".into()),
        ..from_file
    };
    assert_eq!(load(&flags), from_flags);
}

/// The configuration a service started with `args` loads, its own `--instance` flag included.
fn load(args: &[&str]) -> Config {
    let cli = Cli::parse_from(std::iter::once("svc").chain(args.iter().copied()));
    let own = Own {
        instance: cli.instance.as_deref(),
    };
    cli.service.load(own).unwrap()
}

#[test]
fn no_flags_and_no_file_give_the_defaults_and_a_missing_file_is_an_error() {
    let config: Config = Cli::parse_from(["svc"]).service.load(()).unwrap();
    assert_eq!(config, Config::default());
    let missing = Cli::parse_from(["svc", "--config", "/nonexistent/acctmon.toml"]);
    let err = missing.service.load::<Config>(()).unwrap_err();
    assert!(err.to_string().contains("config file"), "{err}");
}
