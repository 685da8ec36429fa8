//! User-data events → domain events: which events, in which order, with which figures.

mod common;

use acctmon_binance::decode_frame;
use acctmon_binance::decode_json;
use acctmon_binance::user::{
    AccountConfigUpdateEvent, AccountUpdateEvent, MarginCallEvent, OrderTradeUpdateEvent,
    TradeLiteEvent, UserEvent, parse_account_config_update, parse_account_update,
    parse_margin_call, parse_order_trade_update, parse_trade_lite, parse_user_event,
};
use acctmon_domain::{
    Asset, ConfigChange, Event, EventKind, FillSource, MarginType, OrderStatus, PositionSide, Side,
    StreamStatus, Symbol, Timestamp,
};
use common::{account, fixture};
use rust_decimal_macros::dec;

fn events(name: &str) -> Vec<Event> {
    decode_frame(&account(), &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(Event::kind).collect()
}

#[test]
fn trade_fill_yields_fill_then_order_update_with_real_figures() {
    let events = events("order_trade_update.real_trade_filled_2023.json");
    assert_eq!(kinds(&events), [EventKind::Fill, EventKind::Order]);
    let (Event::Fill(fill), Event::Order(order)) = (&events[0], &events[1]) else {
        panic!("unexpected events {events:?}");
    };
    assert_eq!(fill.account.as_str(), "main");
    assert_eq!(fill.symbol.as_str(), "XEMUSDT");
    assert_eq!((fill.trade_id, fill.order_id), (86_171_692, 6_437_837_518));
    assert_eq!(fill.client_order_id.as_deref(), Some("R01LRkpXT7C4"));
    assert_eq!(fill.side, Side::Sell);
    assert_eq!(fill.position_side, Some(PositionSide::Both));
    assert_eq!((fill.price, fill.qty), (dec!(0.0275), dec!(7259)));
    let commission = fill.commission.as_ref().expect("commission");
    assert_eq!(commission.asset.as_str(), "USDT");
    assert_eq!(commission.amount, dec!(0.03992450));
    assert_eq!(fill.realized_pnl, Some(dec!(-0.36230000)));
    assert!(fill.maker);
    assert_eq!(fill.time, Timestamp(1_688_758_982_041));
    assert_eq!(fill.event_time, Timestamp(1_688_758_982_045));
    assert_eq!(fill.source, FillSource::OrderUpdate);
    assert_eq!(fill.margin_asset, None);

    assert_eq!(order.status, OrderStatus::Filled);
    assert_eq!(order.execution, "TRADE");
    assert_eq!(order.order_type, "LIMIT");
    assert_eq!((order.orig_qty, order.filled_qty), (dec!(7259), dec!(7259)));
    assert_eq!((order.price, order.avg_price), (dec!(0.0275), dec!(0.0275)));
    assert!(!order.reduce_only);
    assert_eq!(order.time, Timestamp(1_688_758_982_041));
    assert_eq!(order.event_time, Timestamp(1_688_758_982_045));
}

#[test]
fn order_updates_without_a_fill_yield_only_the_order_update() {
    for (name, status, execution) in [
        (
            "order_trade_update.real_new_limit_2021.json",
            OrderStatus::New,
            "NEW",
        ),
        (
            "order_trade_update.real_amendment_2023.json",
            OrderStatus::New,
            "AMENDMENT",
        ),
        (
            "order_trade_update.real_canceled_usdc_2026.json",
            OrderStatus::Canceled,
            "CANCELED",
        ),
        (
            "order_trade_update.real_new_usdc_2026.json",
            OrderStatus::New,
            "NEW",
        ),
        ("order_trade_update.docs.json", OrderStatus::New, "NEW"),
    ] {
        let events = events(name);
        assert_eq!(kinds(&events), [EventKind::Order], "{name}");
        let Event::Order(order) = &events[0] else {
            unreachable!()
        };
        assert_eq!(
            (order.status, order.execution.as_str()),
            (status, execution),
            "{name}"
        );
    }
}

#[test]
fn calculated_execution_with_quantity_is_a_liquidation_fill() {
    let text = fixture("order_trade_update.real_trade_filled_2023.json")
        .replace(r#""x": "TRADE""#, r#""x": "CALCULATED""#)
        .replace(
            r#""c": "R01LRkpXT7C4""#,
            r#""c": "autoclose-1688758982041""#,
        )
        .replace(r#""o": "LIMIT""#, r#""o": "LIQUIDATION""#);
    let events = decode_frame(&account(), &text).unwrap();
    assert_eq!(kinds(&events), [EventKind::Fill, EventKind::Order]);
    let Event::Fill(fill) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        fill.client_order_id.as_deref(),
        Some("autoclose-1688758982041")
    );
}

#[test]
fn trade_execution_with_zero_quantity_is_not_a_fill() {
    let text = fixture("order_trade_update.real_trade_filled_2023.json")
        .replace(r#""l": "7259""#, r#""l": "0""#);
    assert_eq!(
        kinds(&decode_frame(&account(), &text).unwrap()),
        [EventKind::Order]
    );
}

#[test]
fn fill_without_commission_fields_has_no_commission() {
    let text = fixture("order_trade_update.real_trade_filled_2023.json")
        .replace(r#""n": "0.03992450","#, "")
        .replace(r#""N": "USDT","#, "");
    let event: OrderTradeUpdateEvent<'_> = decode_json(&text).unwrap();
    let (fill, _) = parse_order_trade_update(&account(), &event).unwrap();
    assert_eq!(fill.unwrap().commission, None);
}

#[test]
fn algo_triggered_fill_keeps_its_rounded_order_id_and_the_algo_client_id() {
    let events = events("algo_trigger_sequence.real_2025.json");
    assert_eq!(
        kinds(&events),
        [
            EventKind::Stream,
            EventKind::Stream,
            EventKind::Order,
            EventKind::Fill,
            EventKind::Order,
            EventKind::Stream,
            EventKind::Stream
        ]
    );
    let Event::Fill(fill) = &events[3] else {
        unreachable!()
    };
    assert_eq!(fill.order_id, 8_389_766_049_535_966_000);
    assert_eq!(fill.client_order_id.as_deref(), Some("testtest0843"));
    assert_eq!((fill.price, fill.qty), (dec!(3113.87), dec!(0.05)));
    assert_eq!(
        fill.commission.as_ref().map(|c| c.amount),
        Some(dec!(0.07784675))
    );
    for index in [0, 1, 5, 6] {
        let Event::Stream(notice) = &events[index] else {
            unreachable!()
        };
        assert_eq!(
            notice.status,
            StreamStatus::Other {
                event: "ALGO_UPDATE".to_owned()
            }
        );
    }
    let Event::Stream(first) = &events[0] else {
        unreachable!()
    };
    assert_eq!(first.time, Timestamp(1_765_638_225_744));
}

#[test]
fn trade_lite_is_a_fill_without_fee_pnl_or_position_side() {
    let text = fixture("trade_lite.real_2024.json");
    let event: TradeLiteEvent<'_> = decode_json(&text).unwrap();
    let fill = parse_trade_lite(&account(), &event).unwrap();
    assert_eq!(fill.source, FillSource::TradeLite);
    assert_eq!(fill.order_id, 8_389_765_739_703_625_592);
    assert_eq!(fill.trade_id, 4_467_432_841);
    assert_eq!(
        (fill.position_side, fill.commission, fill.realized_pnl),
        (None, None, None)
    );
    assert_eq!((fill.side, fill.maker), (Side::Buy, false));
    assert_eq!((fill.price, fill.qty), (dec!(2631.90), dec!(0.037)));
    assert_eq!(fill.time, Timestamp(1_727_683_915_920));
}

#[test]
fn fill_sequence_reports_the_same_trade_from_both_sources() {
    let events = events("user_stream_fill_sequence.real_usdc_2026.json");
    assert_eq!(
        kinds(&events),
        [
            EventKind::Fill,
            EventKind::Position,
            EventKind::Balance,
            EventKind::Fill,
            EventKind::Order
        ]
    );
    let (Event::Fill(lite), Event::Fill(full)) = (&events[0], &events[3]) else {
        unreachable!()
    };
    assert_eq!(
        (lite.symbol.as_str(), lite.trade_id),
        (full.symbol.as_str(), full.trade_id)
    );
    assert_eq!(lite.trade_id, 702_423_109);
    assert_eq!(
        (lite.source, full.source),
        (FillSource::TradeLite, FillSource::OrderUpdate)
    );
    assert_eq!(lite.qty, full.qty);
    assert_eq!(
        full.commission
            .as_ref()
            .map(|c| (c.asset.as_str(), c.amount)),
        Some(("USDC", dec!(0)))
    );
    let Event::Position(position) = &events[1] else {
        unreachable!()
    };
    assert_eq!(position.breakeven_price, Some(dec!(2317.3)));
    assert_eq!(
        position.margin_asset.as_ref().map(Asset::as_str),
        Some("USDC")
    );
}

#[test]
fn market_order_sequence_decodes_in_arrival_order() {
    let events = events("user_stream_market_order_sequence.real_2026.json");
    assert_eq!(
        kinds(&events),
        [
            EventKind::Fill,
            EventKind::Order,
            EventKind::Position,
            EventKind::Balance
        ]
    );
    let Event::Position(position) = &events[2] else {
        unreachable!()
    };
    assert_eq!(
        (position.qty, position.entry_price),
        (dec!(0.1), dec!(80.19))
    );
    assert_eq!(position.breakeven_price, Some(dec!(80.230095)));
}

#[test]
fn order_reason_account_update_yields_positions_then_balances_and_no_movement() {
    let events = events("account_update.real_order_oneway_2023.json");
    assert_eq!(kinds(&events), [EventKind::Position, EventKind::Balance]);
    let (Event::Position(p), Event::Balance(b)) = (&events[0], &events[1]) else {
        unreachable!()
    };
    assert_eq!(p.symbol.as_str(), "BTCUSDT");
    assert_eq!(
        (p.side, p.qty, p.entry_price),
        (PositionSide::Both, dec!(-0.001), dec!(30566.30000000))
    );
    assert_eq!(p.accumulated_realized, Some(dec!(-0.01240001)));
    assert_eq!(p.unrealized, Some(dec!(-0.00059564)));
    assert_eq!(p.margin_type, Some(MarginType::Cross));
    assert_eq!(p.isolated_wallet, Some(dec!(0)));
    assert_eq!(p.margin_asset.as_ref().map(Asset::as_str), Some("USDT"));
    assert_eq!(p.breakeven_price, None);
    assert_eq!(p.reason, "ORDER");
    assert_eq!(
        (p.time, p.event_time),
        (Timestamp(1_688_225_220_403), Timestamp(1_688_225_220_407))
    );
    assert_eq!(
        (b.asset.as_str(), b.wallet, b.cross_wallet),
        ("USDT", dec!(5735.64055698), Some(dec!(5735.64055698)))
    );
    assert_eq!(b.reason, "ORDER");
}

#[test]
fn docs_account_update_moves_money_first_then_positions_then_balances() {
    let text = fixture("account_update.docs.json");
    let event: AccountUpdateEvent<'_> = decode_json(&text).unwrap();
    let events = parse_account_update(&account(), &event).unwrap();
    assert_eq!(
        kinds(&events),
        [
            EventKind::Transfer,
            EventKind::Transfer,
            EventKind::Position,
            EventKind::Position,
            EventKind::Position,
            EventKind::Balance,
            EventKind::Balance
        ]
    );
    let Event::Transfer(t) = &events[1] else {
        unreachable!()
    };
    assert_eq!(
        (t.asset.as_str(), t.amount, t.reason.as_str()),
        ("BUSD", dec!(-49.12345678), "ORDER")
    );
    assert!(!t.external, "ORDER is not owner-moved money");
    let Event::Position(short) = &events[4] else {
        unreachable!()
    };
    assert_eq!((short.side, short.qty), (PositionSide::Short, dec!(-10)));
    assert_eq!(short.margin_type, Some(MarginType::Isolated));
    assert_eq!(short.isolated_wallet, Some(dec!(6570.42511771)));
}

#[test]
fn funding_fee_becomes_funding_with_the_optional_symbol() {
    let events = events("account_update.real_funding_fee_cross_2026.json");
    assert_eq!(kinds(&events), [EventKind::Funding, EventKind::Balance]);
    let Event::Funding(funding) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        (funding.asset.as_str(), funding.amount),
        ("USDC", dec!(-0.00085067))
    );
    assert_eq!((funding.symbol.as_ref(), funding.tran_id), (None, None));
    assert_eq!(funding.time, Timestamp(1_776_787_203_246));

    let with_symbol = fixture("account_update.real_funding_fee_cross_2026.json").replacen(
        r#""m": "FUNDING_FEE""#,
        r#""m": "FUNDING_FEE", "S": "ETHUSDC""#,
        1,
    );
    let events = decode_frame(&account(), &with_symbol).unwrap();
    let Event::Funding(funding) = &events[0] else {
        unreachable!()
    };
    assert_eq!(funding.symbol.as_ref().map(Symbol::as_str), Some("ETHUSDC"));
}

#[test]
fn deposits_and_withdrawals_are_external_transfers() {
    for (name, amount) in [
        ("account_update.real_deposit_usdc_2026.json", dec!(10)),
        ("account_update.real_withdraw_usdc_2026.json", dec!(-10)),
    ] {
        let events = events(name);
        assert_eq!(
            kinds(&events),
            [EventKind::Transfer, EventKind::Balance],
            "{name}"
        );
        let Event::Transfer(t) = &events[0] else {
            unreachable!()
        };
        assert_eq!((t.asset.as_str(), t.amount), ("USDC", amount), "{name}");
        assert!(t.external, "{name}");
        assert_eq!(t.tran_id, None);
    }
}

#[test]
fn admin_deposit_rebate_is_income_not_external() {
    let events = events("account_update.real_admin_deposit_2023.json");
    assert_eq!(kinds(&events), [EventKind::Transfer, EventKind::Balance]);
    let Event::Transfer(t) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        (t.reason.as_str(), t.amount, t.external),
        ("ADMIN_DEPOSIT", dec!(0.006), false)
    );
}

#[test]
fn transfer_reasons_are_classified_owner_moved_or_income() {
    let external = [
        "DEPOSIT",
        "WITHDRAW",
        "WITHDRAW_REJECT",
        "MARGIN_TRANSFER",
        "ASSET_TRANSFER",
        "ADMIN_WITHDRAW",
        "COIN_SWAP_DEPOSIT",
        "COIN_SWAP_WITHDRAW",
    ];
    let income = [
        "ADMIN_DEPOSIT",
        "INSURANCE_CLEAR",
        "ADJUSTMENT",
        "OPTIONS_PREMIUM_FEE",
        "OPTIONS_SETTLE_PROFIT",
        "AUTO_EXCHANGE",
        "ORDER",
        "MARGIN_TYPE_CHANGE",
        "SOMETHING_NEW",
    ];
    for (reasons, expected) in [(&external[..], true), (&income[..], false)] {
        for reason in reasons {
            let text = fixture("account_update.real_deposit_usdc_2026.json")
                .replace(r#""m": "DEPOSIT""#, &format!(r#""m": "{reason}""#));
            let events = decode_frame(&account(), &text).unwrap();
            let Event::Transfer(t) = &events[0] else {
                panic!("{reason}: {events:?}")
            };
            assert_eq!((t.reason.as_str(), t.external), (*reason, expected));
        }
    }
}

#[test]
fn old_payload_without_bc_moves_no_money_and_keeps_zero_both_row() {
    let events = events("account_update.real_hedge_cross_2021.json");
    assert_eq!(
        kinds(&events),
        [EventKind::Position, EventKind::Position, EventKind::Balance]
    );
    let (Event::Position(both), Event::Position(long)) = (&events[0], &events[1]) else {
        unreachable!()
    };
    assert_eq!((both.side, both.qty), (PositionSide::Both, dec!(0)));
    assert_eq!(
        (long.side, long.qty, long.entry_price),
        (PositionSide::Long, dec!(2684), dec!(0.45855))
    );
    let Event::Balance(balance) = &events[2] else {
        unreachable!()
    };
    assert_eq!(balance.wallet, dec!(1790.86605837));
}

#[test]
fn closed_position_and_bnfcr_balance_decode() {
    let closed = events("account_update.real_position_closed_2023.json");
    let Event::Position(p) = &closed[0] else {
        unreachable!()
    };
    assert_eq!(
        (p.qty, p.entry_price, p.accumulated_realized),
        (dec!(0), dec!(0), Some(dec!(20.4063)))
    );
    let bnfcr = events("account_update.bnfcr_2026.json");
    assert_eq!(kinds(&bnfcr), [EventKind::Balance]);
    let Event::Balance(b) = &bnfcr[0] else {
        unreachable!()
    };
    assert_eq!((b.asset.as_str(), b.wallet), ("BNFCR", dec!(5001.28983031)));
}

#[test]
fn margin_call_reads_upper_case_margin_type() {
    let text = fixture("margin_call.docs.json");
    let event: MarginCallEvent<'_> = decode_json(&text).unwrap();
    let call = parse_margin_call(&account(), &event).unwrap();
    assert_eq!(call.cross_wallet, Some(dec!(3.16812045)));
    assert_eq!(call.event_time, Timestamp(1_587_727_187_525));
    let p = &call.positions[0];
    assert_eq!(
        (p.symbol.as_str(), p.side, p.qty),
        ("ETHUSDT", PositionSide::Long, dec!(1.327))
    );
    assert_eq!(p.margin_type, Some(MarginType::Cross));
    assert_eq!(
        (p.mark_price, p.unrealized, p.maint_margin),
        (dec!(187.17127), dec!(-1.166074), dec!(1.614445))
    );
    assert_eq!(
        kinds(&events("margin_call.docs.json")),
        [EventKind::MarginCall]
    );
}

#[test]
fn config_updates_are_leverage_or_multi_assets() {
    for (name, change) in [
        (
            "account_config_update.real_leverage_2021.json",
            ConfigChange::Leverage {
                symbol: Symbol::new("BTCUSDT").unwrap(),
                leverage: 19,
            },
        ),
        (
            "account_config_update.docs_leverage.json",
            ConfigChange::Leverage {
                symbol: Symbol::new("BTCUSDT").unwrap(),
                leverage: 25,
            },
        ),
        (
            "account_config_update.docs_multi_assets.json",
            ConfigChange::MultiAssets { enabled: true },
        ),
        (
            "account_config_update.real_multi_assets_2021.json",
            ConfigChange::MultiAssets { enabled: false },
        ),
    ] {
        let text = fixture(name);
        let event: AccountConfigUpdateEvent<'_> = decode_json(&text).unwrap();
        let updates = parse_account_config_update(&account(), &event).unwrap();
        assert_eq!(updates.len(), 1, "{name}");
        assert_eq!(updates[0].change, change, "{name}");
        assert_eq!(updates[0].time, Timestamp(event.transaction_time));
        assert_eq!(updates[0].event_time, Timestamp(event.event_time));
    }
}

#[test]
fn listen_key_expiry_is_a_stream_notice() {
    let events = events("listen_key_expired.docs.json");
    let [Event::Stream(notice)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(notice.status, StreamStatus::Expired);
    assert_eq!(notice.time, Timestamp(1_736_996_475_556));
}

#[test]
fn events_the_books_do_not_use_become_named_notices() {
    for (name, event) in [
        ("algo_update.docs.json", "ALGO_UPDATE"),
        ("algo_update.real_finished_2025.json", "ALGO_UPDATE"),
        (
            "conditional_order_trigger_reject.docs.json",
            "CONDITIONAL_ORDER_TRIGGER_REJECT",
        ),
        ("strategy_update.docs.json", "STRATEGY_UPDATE"),
        ("grid_update.docs.json", "GRID_UPDATE"),
    ] {
        let events = events(name);
        let [Event::Stream(notice)] = &events[..] else {
            panic!("{name}: {events:?}")
        };
        assert_eq!(
            notice.status,
            StreamStatus::Other {
                event: event.to_owned()
            },
            "{name}"
        );
    }
}

#[test]
fn unknown_event_keeps_its_name_and_time() {
    let text = r#"{"e":"SOMETHING_NEW","E":1700000000000,"x":{"y":[1,2]}}"#;
    let event = UserEvent::from_json(text).unwrap();
    assert!(matches!(&event, UserEvent::Unknown(u) if u.event_type == "SOMETHING_NEW"));
    let events = parse_user_event(&account(), &event).unwrap();
    let [Event::Stream(notice)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        notice.status,
        StreamStatus::Other {
            event: "SOMETHING_NEW".to_owned()
        }
    );
    assert_eq!(notice.time, Timestamp(1_700_000_000_000));
}

#[test]
fn user_event_from_json_chooses_the_type_by_name_wherever_e_is() {
    let text =
        r#"{"E":1611646737479,"T":1611646737476,"ai":{"j":true},"e":"ACCOUNT_CONFIG_UPDATE"}"#;
    let event = UserEvent::from_json(text).unwrap();
    assert_eq!(event.name(), "ACCOUNT_CONFIG_UPDATE");
    assert_eq!(event.event_time(), 1_611_646_737_479);
    assert!(matches!(event, UserEvent::AccountConfigUpdate(_)));
}
