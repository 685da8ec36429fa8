//! `decode_frame` on what a socket or a recorded NDJSON file delivers: raw events, combined-stream
//! wrappers, arrays, in any key order and layout; `decode_value` agrees with it.

mod common;

use acctmon_binance::{decode_frame, decode_frame_into, decode_value};
use acctmon_domain::{Event, EventKind, Timestamp};
use common::{account, compact, compact_fixture, fixture};
use rust_decimal_macros::dec;

/// The stream payloads among the fixtures (REST responses are not frames).
const STREAM_FIXTURES: [&str; 37] = [
    "account_config_update.docs_leverage.json",
    "account_config_update.docs_multi_assets.json",
    "account_config_update.real_leverage_2021.json",
    "account_config_update.real_multi_assets_2021.json",
    "account_update.bnfcr_2026.json",
    "account_update.docs.json",
    "account_update.real_admin_deposit_2023.json",
    "account_update.real_deposit_usdc_2026.json",
    "account_update.real_funding_fee_cross_2026.json",
    "account_update.real_hedge_cross_2021.json",
    "account_update.real_order_oneway_2023.json",
    "account_update.real_position_closed_2023.json",
    "account_update.real_withdraw_usdc_2026.json",
    "algo_trigger_sequence.real_2025.json",
    "algo_update.docs.json",
    "algo_update.real_finished_2025.json",
    "algo_update.real_triggering_2025.json",
    "conditional_order_trigger_reject.docs.json",
    "grid_update.docs.json",
    "listen_key_expired.docs.json",
    "margin_call.docs.json",
    "mark_price_update.docs.json",
    "mark_price_update.real_all_market_arr_2022.json",
    "mark_price_update.real_combined_btcusdt_2022.json",
    "mark_price_update_arr.docs.json",
    "order_trade_update.docs.json",
    "order_trade_update.real_amendment_2023.json",
    "order_trade_update.real_amendment_usdc_2026.json",
    "order_trade_update.real_canceled_usdc_2026.json",
    "order_trade_update.real_new_limit_2021.json",
    "order_trade_update.real_new_usdc_2026.json",
    "order_trade_update.real_trade_filled_2023.json",
    "strategy_update.docs.json",
    "trade_lite.docs.json",
    "trade_lite.real_2024.json",
    "user_stream_fill_sequence.real_usdc_2026.json",
    "user_stream_market_order_sequence.real_2026.json",
];

fn decode(text: &str) -> Vec<Event> {
    decode_frame(&account(), text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn every_stream_fixture_decodes_the_same_pretty_compact_sorted_and_as_a_value() {
    for name in STREAM_FIXTURES {
        let pretty = fixture(name);
        let expected = decode(&pretty);
        assert!(!expected.is_empty(), "{name}");
        assert_eq!(decode(&compact(&pretty)), expected, "{name} compact");
        // Keys sorted alphabetically put `E` and `T` before `e`: the slow path finds the name.
        let value: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(decode(&value.to_string()), expected, "{name} sorted keys");
        assert_eq!(
            decode_value(&account(), &value).unwrap(),
            expected,
            "{name} value"
        );
    }
}

/// Every event the fixtures give (every kind a user stream carries) crosses the bus unchanged: encoded
/// as ingest stores it on `EVENTS`, decoded as the processor reads it.
#[test]
fn every_event_of_the_fixtures_crosses_the_bus_unchanged() {
    let mut kinds = std::collections::BTreeSet::new();
    for name in STREAM_FIXTURES {
        for event in decode(&fixture(name)) {
            kinds.insert(format!("{:?}", event.kind()));
            let envelope = acctmon_bus::Envelope::new(event, 1_700_000_000_000);
            let bytes = envelope.encode().unwrap();
            assert_eq!(
                acctmon_bus::Envelope::decode(&bytes).unwrap(),
                envelope,
                "{name}"
            );
        }
    }
    assert!(kinds.len() >= 9, "kinds covered: {kinds:?}");
}

#[test]
fn ndjson_lines_decode_one_by_one_in_order() {
    let ndjson = [
        "trade_lite.real_2024.json",
        "order_trade_update.real_trade_filled_2023.json",
        "account_update.real_funding_fee_cross_2026.json",
        "mark_price_update.real_combined_btcusdt_2022.json",
        "listen_key_expired.docs.json",
    ]
    .map(compact_fixture)
    .join("\n");
    let mut out = Vec::new();
    for line in ndjson.lines() {
        decode_frame_into(&account(), line, &mut out).unwrap();
    }
    let kinds: Vec<_> = out.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Fill,
            EventKind::Fill,
            EventKind::Order,
            EventKind::Funding,
            EventKind::Balance,
            EventKind::Mark,
            EventKind::Stream
        ]
    );
}

#[test]
fn array_of_events_concatenates_their_events_in_order() {
    let text = format!(
        "[{}, {}]",
        compact_fixture("order_trade_update.real_trade_filled_2023.json"),
        compact_fixture("account_update.real_order_oneway_2023.json")
    );
    let kinds: Vec<_> = decode(&text).iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Fill,
            EventKind::Order,
            EventKind::Position,
            EventKind::Balance
        ]
    );
    assert!(decode("[]").is_empty());
}

#[test]
fn combined_wrapper_with_an_object_yields_its_mark_price() {
    let events = decode(&fixture(
        "mark_price_update.real_combined_btcusdt_2022.json",
    ));
    let [Event::Mark(mark)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(mark.symbol.as_str(), "BTCUSDT");
    assert_eq!(mark.mark_price, dec!(29968.93335956));
    assert_eq!(mark.index_price, Some(dec!(29980.66509373)));
    assert_eq!(mark.funding_rate, Some(dec!(0.0001)));
    assert_eq!(mark.next_funding_time, Some(Timestamp(1_654_876_800_000)));
    assert_eq!(mark.time, Timestamp(1_654_858_692_000));
}

#[test]
fn all_market_array_raw_and_wrapped_yields_168_marks() {
    let raw = compact_fixture("mark_price_update.real_all_market_arr_2022.json");
    let events = decode(&raw);
    assert_eq!(events.len(), 168);
    assert!(events.iter().all(|e| e.kind() == EventKind::Mark));
    let Event::Mark(eth) = &events[1] else {
        unreachable!()
    };
    assert_eq!(
        (eth.symbol.as_str(), eth.mark_price),
        ("ETHUSDT", dec!(1770.73))
    );

    let wrapped = format!(r#"{{"stream":"!markPrice@arr@1s","data":{raw}}}"#);
    assert_eq!(decode(&wrapped), events);
}

#[test]
fn user_data_in_a_combined_wrapper_decodes_like_the_raw_event() {
    let raw = compact_fixture("trade_lite.real_2024.json");
    let wrapped = format!(r#"{{"stream":"pqia91ma19a5s61cv6a81va65sdf19v8a65a1","data":{raw}}}"#);
    assert_eq!(decode(&wrapped), decode(&raw));
    let algo = decode(&fixture("algo_update.real_triggering_2025.json"));
    assert_eq!(algo.len(), 1);
}

#[test]
fn mark_price_with_moving_average_and_escaped_symbol_decodes() {
    let events = decode(&fixture("mark_price_update.docs.json"));
    let [Event::Mark(mark)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(mark.mark_price, dec!(11794.15));
    let escaped = compact_fixture("mark_price_update.docs.json")
        .replace("\"BTCUSDT\"", r#""\u5e01\u5b89USDT""#);
    let [Event::Mark(mark)] = &decode(&escaped)[..] else {
        panic!()
    };
    assert_eq!(mark.symbol.as_str(), "币安USDT");
}

#[test]
fn escaped_client_order_id_takes_the_serde_path_with_the_same_result() {
    let plain = compact_fixture("order_trade_update.real_trade_filled_2023.json");
    let escaped = plain.replace("R01LRkpXT7C4", r#"R01L\/RkpXT7C4"#);
    let events = decode(&escaped);
    let Event::Order(order) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(order.client_order_id, "R01L/RkpXT7C4");
    let mut expected = decode(&plain);
    if let [Event::Fill(f), Event::Order(o)] = &mut expected[..] {
        f.client_order_id = Some("R01L/RkpXT7C4".to_owned());
        o.client_order_id = "R01L/RkpXT7C4".to_owned();
    }
    assert_eq!(events, expected);
}

#[test]
fn decimals_sent_as_json_numbers_are_read_exactly() {
    let text =
        compact_fixture("trade_lite.docs.json").replace(r#""L":"64089.20""#, r#""L":64089.20"#);
    let [Event::Fill(fill)] = &decode(&text)[..] else {
        panic!()
    };
    assert_eq!(fill.price, dec!(64089.2));
}
