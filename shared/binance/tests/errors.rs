//! One field of a real payload broken at a time: the error says which payload and field, and why.

mod common;

use acctmon_binance::rest::{IncomeRow, UserTrade, parse_user_trade};
use acctmon_binance::{ParseError, decode_frame, decode_frame_into, decode_json, decode_value};
use common::{account, fixture, mutate, remove};
use serde_json::json;

const FILL: &str = "order_trade_update.real_trade_filled_2023.json";

fn decode_err(text: &str) -> ParseError {
    match decode_frame(&account(), text) {
        Ok(events) => panic!("expected an error, got {events:?} from {text}"),
        Err(e) => e,
    }
}

#[test]
fn decimal_that_is_not_a_number_names_its_field_and_value() {
    let err = decode_err(&mutate(FILL, "/o/L", json!("0,0275")));
    let ParseError::Decimal {
        payload,
        field,
        value,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*payload, field.as_str(), value.as_str()),
        ("ORDER_TRADE_UPDATE", "o.L", "\"0,0275\"")
    );
    assert_eq!(
        err.to_string(),
        "ORDER_TRADE_UPDATE: field `o.L` is not a decimal number: \"0,0275\""
    );
}

#[test]
fn decimal_error_in_a_nested_row_names_the_row() {
    let err = decode_err(&mutate(
        "account_update.real_order_oneway_2023.json",
        "/a/P/0/pa",
        json!("-0.001x"),
    ));
    let ParseError::Decimal { payload, field, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*payload, field.as_str()), ("ACCOUNT_UPDATE", "a.P[0].pa"));

    let err = decode_err(&mutate(
        "account_update.real_order_oneway_2023.json",
        "/a/B/0/wb",
        json!(null),
    ));
    assert!(
        matches!(&err, ParseError::Decimal { field, value, .. } if field == "a.B[0].wb" && value == "null"),
        "{err:?}"
    );
}

#[test]
fn unknown_side_names_its_field() {
    let err = decode_err(&mutate(FILL, "/o/S", json!("SIDEWAYS")));
    let ParseError::UnknownValue {
        payload,
        field,
        value,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*payload, *field, value.as_str()),
        ("ORDER_TRADE_UPDATE", "o.S", "SIDEWAYS")
    );
    assert_eq!(
        err.to_string(),
        "ORDER_TRADE_UPDATE: field `o.S` has unknown value \"SIDEWAYS\""
    );

    let err = decode_err(&mutate("trade_lite.real_2024.json", "/S", json!("buy")));
    assert!(
        matches!(err, ParseError::UnknownValue { field: "S", .. }),
        "{err:?}"
    );
}

#[test]
fn unknown_position_side_and_margin_type_name_their_fields() {
    let err = decode_err(&mutate(
        "account_update.docs.json",
        "/a/P/1/ps",
        json!("MIDDLE"),
    ));
    assert!(
        matches!(&err, ParseError::UnknownValue { field: "a.P[].ps", value, .. } if value == "MIDDLE"),
        "{err:?}"
    );
    let err = decode_err(&mutate(
        "account_update.docs.json",
        "/a/P/1/mt",
        json!("portfolio"),
    ));
    assert!(
        matches!(
            err,
            ParseError::UnknownValue {
                field: "a.P[].mt",
                ..
            }
        ),
        "{err:?}"
    );
    let err = decode_err(&mutate("margin_call.docs.json", "/p/0/mt", json!("HALF")));
    assert!(
        matches!(
            err,
            ParseError::UnknownValue {
                field: "p[].mt",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn empty_symbol_is_refused() {
    let err = decode_err(&mutate(FILL, "/o/s", json!("")));
    assert!(
        matches!(
            err,
            ParseError::Empty {
                payload: "ORDER_TRADE_UPDATE",
                field: "o.s"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_required_field_names_the_object_and_field() {
    let err = decode_err(&remove(FILL, "/o/i"));
    let ParseError::Shape {
        payload,
        path,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*payload, path.as_str()), ("ORDER_TRADE_UPDATE", "o"));
    assert!(message.contains("missing field `i`"), "{message}");

    let err = decode_err(&remove("trade_lite.real_2024.json", "/t"));
    assert!(
        matches!(&err, ParseError::Shape { message, .. } if message.contains("missing field `t`")),
        "{err:?}"
    );

    let err = decode_err(&remove("listen_key_expired.docs.json", "/E"));
    assert!(
        matches!(&err, ParseError::Shape { message, .. } if message.contains("missing field `E`")),
        "{err:?}"
    );
}

#[test]
fn order_id_that_lost_precision_or_sign_is_refused() {
    let err = decode_err(&fixture(FILL).replace("6437837518", "6.437837518e9"));
    assert!(
        matches!(&err, ParseError::Shape { path, .. } if path == "o.i"),
        "{err:?}"
    );
    let err = decode_err(&mutate(FILL, "/o/i", json!(-1)));
    assert!(
        matches!(&err, ParseError::Shape { path, .. } if path == "o.i"),
        "{err:?}"
    );
    let err = decode_err(&mutate(
        "account_config_update.docs_leverage.json",
        "/ac/l",
        json!(5_000_000_000_u64),
    ));
    assert!(
        matches!(&err, ParseError::Shape { path, .. } if path == "ac.l"),
        "{err:?}"
    );
}

#[test]
fn wrong_type_names_the_path() {
    let err = decode_err(&mutate(FILL, "/o/m", json!("true")));
    let ParseError::Shape { path, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "o.m");
    assert!(message.contains("expected a boolean"), "{message}");
}

#[test]
fn text_that_is_not_json_is_a_json_error() {
    for text in [
        "hello",
        "",
        "{\"e\":\"ORDER_TRADE_UPDATE\",",
        &fixture(FILL)[..200],
        &format!("{} trailing", fixture(FILL)),
        "[{\"e\":\"TRADE_LITE\"},",
    ] {
        let err = decode_err(text);
        assert!(matches!(err, ParseError::Json(_)), "{text}: {err:?}");
        assert!(err.to_string().starts_with("not JSON: "), "{err}");
    }
}

#[test]
fn json_that_is_not_an_event_is_refused() {
    for text in [
        "42",
        "\"ORDER_TRADE_UPDATE\"",
        "null",
        r#"{"stream":"x"}"#,
        r#"{"code":-1121,"msg":"Invalid symbol."}"#,
    ] {
        let err = decode_err(text);
        assert!(matches!(err, ParseError::NotAnEvent(_)), "{text}: {err:?}");
    }
    let err = decode_value(&account(), &json!({"e": 5})).unwrap_err();
    assert!(matches!(err, ParseError::NotAnEvent(_)), "{err:?}");
}

#[test]
fn config_update_without_ac_or_ai_is_refused() {
    let err = decode_err(&remove("account_config_update.docs_leverage.json", "/ac"));
    assert!(
        matches!(
            err,
            ParseError::Missing {
                payload: "ACCOUNT_CONFIG_UPDATE",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn failing_array_element_is_named_and_nothing_is_emitted() {
    let good = common::compact_fixture("trade_lite.real_2024.json");
    let bad = mutate("trade_lite.real_2024.json", "/L", json!("x"));
    let text = format!("[{good},{good},{bad}]");
    let err = decode_err(&text);
    let ParseError::Element { index, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*index, 2);
    assert!(
        matches!(**source, ParseError::Decimal { ref field, .. } if field == "L"),
        "{source:?}"
    );
    assert!(
        err.to_string()
            .starts_with("array element 2: TRADE_LITE: field `L`"),
        "{err}"
    );

    let mut out = Vec::new();
    decode_frame_into(&account(), &good, &mut out).unwrap();
    assert!(decode_frame_into(&account(), &text, &mut out).is_err());
    assert_eq!(out.len(), 1, "a failed frame leaves the output as it was");
}

#[test]
fn combined_wrapper_data_error_is_reported() {
    let text = mutate(
        "mark_price_update.real_combined_btcusdt_2022.json",
        "/data/p",
        json!("n/a"),
    );
    let err = decode_err(&text);
    assert!(
        matches!(&err, ParseError::Decimal { payload: "markPriceUpdate", field, .. } if field == "p"),
        "{err:?}"
    );
}

#[test]
fn decode_value_reports_the_same_errors() {
    let value: serde_json::Value =
        serde_json::from_str(&mutate(FILL, "/o/q", json!("seven"))).unwrap();
    let err = decode_value(&account(), &value).unwrap_err();
    assert!(
        matches!(&err, ParseError::Decimal { field, value, .. } if field == "o.q" && value == "\"seven\""),
        "{err:?}"
    );
    let value: serde_json::Value =
        serde_json::from_str(&mutate(FILL, "/o/S", json!("UP"))).unwrap();
    assert!(matches!(
        decode_value(&account(), &value),
        Err(ParseError::UnknownValue { field: "o.S", .. })
    ));
}

#[test]
fn rest_errors_name_their_fields() {
    let text = mutate(
        "income_funding_fee.real_papi_2024.json",
        "/0/income",
        json!("-0.0461891x"),
    );
    let err = decode_json::<Vec<IncomeRow>>(&text).unwrap_err();
    assert!(
        matches!(&err, ParseError::Decimal { field, .. } if field == "[0].income"),
        "{err:?}"
    );

    let text = mutate("user_trades.real_2022.json", "/1/side", json!("HOLD"));
    let trades: Vec<UserTrade> = decode_json(&text).unwrap();
    let err = parse_user_trade(&account(), &trades[1]).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::UnknownValue {
                payload: "userTrades",
                field: "side",
                ..
            }
        ),
        "{err:?}"
    );

    let err =
        decode_json::<Vec<UserTrade>>(&remove("user_trades.real_2022.json", "/0/commissionAsset"))
            .unwrap_err();
    assert!(
        matches!(&err, ParseError::Shape { path, message, .. } if path == "[0]" && message.contains("commissionAsset")),
        "{err:?}"
    );
}
