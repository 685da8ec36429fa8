//! The command line's contract: input formats, error reporting, exit codes, help.

// Helpers of these tests panic on malformed fixtures: that is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use serde_json::Value;

fn acctmon() -> Command {
    Command::cargo_bin("acctmon").expect("binary built")
}

const FILL: &str = r#"{"e":"ORDER_TRADE_UPDATE","T":1688758982041,"E":1688758982045,"o":{"s":"XEMUSDT","c":"R01","S":"SELL","o":"LIMIT","f":"GTC","q":"7259","p":"0.0275","ap":"0.0275","sp":"0","x":"TRADE","X":"FILLED","i":6437837518,"l":"7259","z":"7259","L":"0.0275","n":"0.03992450","N":"USDT","T":1688758982041,"t":86171692,"b":"0","a":"0","m":true,"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0","pP":false,"si":0,"ss":0}}"#;
const MARK: &str = r#"{"stream":"xemusdt@markPrice","data":{"e":"markPriceUpdate","E":1688758983000,"s":"XEMUSDT","p":"0.0270","i":"0.0270","P":"0.0270","r":"0.0001","T":1688760000000}}"#;

#[test]
fn decode_reports_bad_frames_with_line_numbers_and_exits_1() {
    let input = format!("{FILL}\n\nnot json\n{{\"e\":\"ORDER_TRADE_UPDATE\",\"E\":1}}\n{MARK}\n");
    let out = acctmon()
        .args(["decode", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("line 3:"), "{stderr}");
    assert!(stderr.contains("line 4:"), "{stderr}");
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 5:"),
        "{stderr}"
    );
    let kinds: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["fill", "order", "mark"],
        "good frames around the bad ones still decode"
    );
}

#[test]
fn decode_exits_0_when_every_frame_decodes() {
    let input = format!("[{FILL},\n{MARK}]");
    acctmon()
        .args(["decode", "--account", "sub-1"])
        .write_stdin(input)
        .assert()
        .success();
}

#[test]
fn decode_tags_events_with_the_account() {
    let out = acctmon()
        .args(["decode", "--account", "sub-1"])
        .write_stdin(FILL)
        .output()
        .unwrap();
    let first: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["account"], "sub-1");
    assert_eq!(first["trade_id"], 86171692);
    assert_eq!(first["commission"]["amount"], "0.03992450");
}

#[test]
fn books_applies_marks_in_file_order() {
    let input = format!("{FILL}\n{MARK}\n");
    let out = acctmon()
        .args(["books"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["positions"][0];
    assert_eq!(p["qty"], "-7259");
    assert_eq!(p["mark_price"], "0.027");
    // -7259 × (0.0270 − 0.0275) = 3.6295
    assert_eq!(p["unrealized"], "3.6295");
    assert_eq!(p["commission"], "0.0399245");
}

#[test]
fn books_with_a_bad_frame_still_prints_the_books_and_exits_1() {
    let input = format!("{FILL}\n{{broken\n");
    let out = acctmon()
        .args(["books"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["positions"].as_array().unwrap().len(), 1);
    assert!(String::from_utf8(out.stderr).unwrap().contains("line 2:"));
}

#[test]
fn invalid_arguments_are_refused_with_a_clear_message() {
    let out = acctmon()
        .args(["books", "--day-boundary", "25:00"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("invalid day boundary")
    );
    let out = acctmon()
        .args(["books", "--account", "no spaces"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("invalid account alias")
    );
    let out = acctmon()
        .args(["decode", "/nonexistent/file.ndjson"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent/file.ndjson")
    );
}

#[test]
fn both_commands_document_themselves() {
    for (cmd, words) in [
        ("decode", ["NDJSON", "line number", "exit status"]),
        ("books", ["positions", "--day-boundary", "--account"]),
    ] {
        let out = acctmon().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        for w in words {
            assert!(
                help.contains(w),
                "`acctmon {cmd} --help` should mention {w}:\n{help}"
            );
        }
    }
}
