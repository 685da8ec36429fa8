//! Every payload of `test_data/` reads with its wire type, and the wire types keep the exchange's figures
//! exactly: ids above 2^53, decimals digit for digit, optional fields absent in older payloads.

mod common;

use std::collections::BTreeSet;

use acctmon_binance::market::{CombinedFrame, MarkPriceUpdateEvent};
use acctmon_binance::rest::{
    AccountBalance, AccountInformation, ApiError, IncomeRow, ListenKeyResponse, OneOrMany,
    PositionRisk, PositionSideDual, PremiumIndex, ServerTime, SymbolLeverageBrackets, UserTrade,
};
use acctmon_binance::user::{
    AccountConfigUpdateEvent, AccountUpdateEvent, AlgoUpdateEvent,
    ConditionalOrderTriggerRejectEvent, GridUpdateEvent, ListenKeyExpiredEvent, MarginCallEvent,
    OrderTradeUpdateEvent, StrategyUpdateEvent, TradeLiteEvent, UserEvent,
};
use acctmon_binance::{ParseError, decode_json};
use common::{TEST_DATA, fixture};
use rust_decimal_macros::dec;
use serde_json::value::RawValue;

/// Reads a fixture with one wire type; the text is leaked so that borrowed wire types can outlive it.
fn read<T: serde::Deserialize<'static>>(name: &str) -> T {
    let text: &'static str = Box::leak(fixture(name).into_boxed_str());
    decode_json(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Reads each element of a JSON array fixture as a user-data event.
fn read_sequence(name: &str) -> Vec<UserEvent<'static>> {
    let elements: Vec<&RawValue> = read(name);
    elements
        .into_iter()
        .map(|raw| UserEvent::from_json(raw.get()).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// Reads the `data` of a combined-stream wrapper with one wire type.
fn read_wrapped<T: serde::Deserialize<'static>>(name: &str) -> T {
    let frame: CombinedFrame<'static> = read(name);
    decode_json(frame.data.get()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Which wire type reads which fixture. A fixture missing here fails `every_fixture_has_a_wire_type`.
fn parse_with_wire_type(name: &str) -> Result<(), ParseError> {
    let text: &'static str = Box::leak(fixture(name).into_boxed_str());
    let prefix = name.split('.').next().unwrap_or_default();
    match prefix {
        "account_config_update" => decode_json::<AccountConfigUpdateEvent<'_>>(text).map(drop),
        "account_update" => decode_json::<AccountUpdateEvent<'_>>(text).map(drop),
        "account_v2" | "account_v3" => decode_json::<AccountInformation>(text).map(drop),
        "algo_update" if name.contains("real_") => {
            let frame: CombinedFrame<'_> = decode_json(text)?;
            decode_json::<AlgoUpdateEvent<'_>>(frame.data.get()).map(drop)
        }
        "algo_update" => decode_json::<AlgoUpdateEvent<'_>>(text).map(drop),
        "algo_trigger_sequence"
        | "user_stream_fill_sequence"
        | "user_stream_market_order_sequence" => {
            for raw in decode_json::<Vec<&RawValue>>(text)? {
                UserEvent::from_json(raw.get())?;
            }
            Ok(())
        }
        "balance_v2" | "balance_v3" => decode_json::<Vec<AccountBalance>>(text).map(drop),
        "conditional_order_trigger_reject" => {
            decode_json::<ConditionalOrderTriggerRejectEvent<'_>>(text).map(drop)
        }
        "error" => decode_json::<ApiError>(text).map(drop),
        "grid_update" => decode_json::<GridUpdateEvent<'_>>(text).map(drop),
        "income" | "income_funding_fee" => decode_json::<Vec<IncomeRow>>(text).map(drop),
        "leverage_bracket" => decode_json::<OneOrMany<SymbolLeverageBrackets>>(text).map(drop),
        "listen_key_expired" => decode_json::<ListenKeyExpiredEvent<'_>>(text).map(drop),
        "listen_key_post" | "listen_key_put" => decode_json::<ListenKeyResponse>(text).map(drop),
        "margin_call" => decode_json::<MarginCallEvent<'_>>(text).map(drop),
        "mark_price_update" if name.contains("combined") => {
            let frame: CombinedFrame<'_> = decode_json(text)?;
            decode_json::<MarkPriceUpdateEvent<'_>>(frame.data.get()).map(drop)
        }
        "mark_price_update" if name.contains("_arr_") => {
            decode_json::<Vec<MarkPriceUpdateEvent<'_>>>(text).map(drop)
        }
        "mark_price_update" => decode_json::<MarkPriceUpdateEvent<'_>>(text).map(drop),
        "mark_price_update_arr" => decode_json::<Vec<MarkPriceUpdateEvent<'_>>>(text).map(drop),
        "order_trade_update" => decode_json::<OrderTradeUpdateEvent<'_>>(text).map(drop),
        "position_risk_v2" | "position_risk_v3" => decode_json::<Vec<PositionRisk>>(text).map(drop),
        "position_side_dual" => decode_json::<PositionSideDual>(text).map(drop),
        "premium_index" => decode_json::<OneOrMany<PremiumIndex>>(text).map(drop),
        "server_time" => decode_json::<ServerTime>(text).map(drop),
        "strategy_update" => decode_json::<StrategyUpdateEvent<'_>>(text).map(drop),
        "trade_lite" => decode_json::<TradeLiteEvent<'_>>(text).map(drop),
        "user_trades" => decode_json::<Vec<UserTrade>>(text).map(drop),
        other => panic!("no wire type for fixture {name} (prefix {other})"),
    }
}

fn fixture_names() -> BTreeSet<String> {
    std::fs::read_dir(TEST_DATA)
        .expect("test_data exists")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[test]
fn every_fixture_has_a_wire_type_and_reads_with_it() {
    let names = fixture_names();
    assert!(
        names.len() >= 62,
        "expected all 60 shared fixtures + 2, got {}",
        names.len()
    );
    for name in &names {
        if let Err(e) = parse_with_wire_type(name) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn every_shared_fixture_is_copied_into_test_data() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/binance/fixtures"
    );
    let Ok(entries) = std::fs::read_dir(shared) else {
        // The shared folder sits beside the repository on developer machines and in CI; a bare clone
        // has only the copies, which the test above reads.
        return;
    };
    let copies = fixture_names();
    for entry in entries {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".json") {
            assert!(copies.contains(&name), "{name} is not in test_data/");
            let original = std::fs::read_to_string(format!("{shared}/{name}")).expect("read");
            assert_eq!(
                original,
                fixture(&name),
                "{name} differs from the shared fixture"
            );
        }
    }
}

#[test]
fn trade_lite_order_id_above_2_pow_53_is_kept_exactly() {
    let event: TradeLiteEvent<'_> = read("trade_lite.real_2024.json");
    assert_eq!(event.order_id, 8_389_765_739_703_625_592);
    assert!(event.order_id > 1 << 53);
    assert_eq!(event.trade_id, 4_467_432_841);
    assert_eq!(event.last_filled_price, dec!(2631.90));
    assert_eq!(event.last_filled_qty, dec!(0.037));
    assert_eq!(event.client_order_id, "O-20240930-081155-001-000-29");
}

#[test]
fn order_trade_update_fill_keeps_rp_and_commission_digits() {
    let event: OrderTradeUpdateEvent<'_> = read("order_trade_update.real_trade_filled_2023.json");
    let o = &event.order;
    assert_eq!(o.realized_profit, Some(dec!(-0.36230000)));
    assert_eq!(o.commission, Some(dec!(0.03992450)));
    assert_eq!(
        o.commission.map(|c| c.to_string()).as_deref(),
        Some("0.03992450")
    );
    assert_eq!(o.commission_asset.as_deref(), Some("USDT"));
    assert_eq!((o.order_id, o.trade_id), (6_437_837_518, 86_171_692));
    assert_eq!(
        (o.last_filled_qty, o.last_filled_price),
        (dec!(7259), dec!(0.0275))
    );
    assert_eq!(o.execution_type, "TRADE");
    assert_eq!(o.status, "FILLED");
    assert!(o.is_maker);
    // n = 7259 × 0.0275 × 0.0002: the 0.02 % maker fee, separate from rp.
    assert_eq!(
        o.last_filled_qty * o.last_filled_price * dec!(0.0002),
        dec!(0.0399245)
    );
}

#[test]
fn old_order_trade_update_without_commission_fields_reads() {
    let event: OrderTradeUpdateEvent<'_> = read("order_trade_update.real_new_limit_2021.json");
    let o = &event.order;
    assert_eq!((o.commission_asset.as_deref(), o.commission), (None, None));
    assert_eq!(
        (o.stp_mode.as_deref(), o.expiry_reason.as_deref()),
        (None, None)
    );
    assert_eq!(o.order_id, 315_803_079);
    assert_eq!(o.position_side, "LONG");
}

#[test]
fn order_trade_update_docs_example_reads_trailing_stop_fields() {
    let event: OrderTradeUpdateEvent<'_> = read("order_trade_update.docs.json");
    let o = &event.order;
    assert_eq!(o.activation_price, Some(dec!(7476.89)));
    assert_eq!(o.callback_rate, Some(dec!(5.0)));
    assert_eq!(o.stop_price, Some(dec!(7103.04)));
    assert_eq!(o.ask_notional, Some(dec!(9.91)));
    assert_eq!(o.expiry_reason.as_deref(), Some("0"));
    assert_eq!(o.price_match.as_deref(), Some("OPPONENT"));
}

#[test]
fn account_update_margin_asset_and_missing_bc_bep_in_2021_payload() {
    let event: AccountUpdateEvent<'_> = read("account_update.real_hedge_cross_2021.json");
    let a = &event.update;
    assert_eq!(a.reason, "ORDER");
    assert_eq!(a.balances[0].balance_change, None);
    assert_eq!(a.balances[0].wallet_balance, dec!(1790.86605837));
    assert_eq!(a.positions.len(), 2);
    assert!(a.positions.iter().all(|p| p.breakeven_price.is_none()));
    assert!(
        a.positions
            .iter()
            .all(|p| p.margin_asset.as_deref() == Some("USDT"))
    );
    assert_eq!(a.positions[1].position_amount, dec!(2684));
    assert_eq!(a.positions[1].position_side, "LONG");
}

#[test]
fn account_update_funding_symbol_is_optional() {
    let event: AccountUpdateEvent<'_> = read("account_update.real_funding_fee_cross_2026.json");
    assert_eq!(event.update.symbol, None);
    assert_eq!(
        event.update.balances[0].balance_change,
        Some(dec!(-0.00085067))
    );

    let with_symbol = fixture("account_update.real_funding_fee_cross_2026.json").replacen(
        r#""m": "FUNDING_FEE""#,
        r#""m": "FUNDING_FEE", "S": "ETHUSDC""#,
        1,
    );
    let event: AccountUpdateEvent<'_> = decode_json(&with_symbol).unwrap();
    assert_eq!(event.update.symbol.as_deref(), Some("ETHUSDC"));
}

#[test]
fn account_update_docs_example_has_bep_and_two_assets() {
    let event: AccountUpdateEvent<'_> = read("account_update.docs.json");
    let a = &event.update;
    assert_eq!(a.balances.len(), 2);
    assert_eq!(a.balances[1].balance_change, Some(dec!(-49.12345678)));
    assert_eq!(a.positions[2].breakeven_price, Some(dec!(6563.6)));
    assert_eq!(
        a.positions[2].accumulated_realized,
        Some(dec!(-45.04000000))
    );
    assert_eq!(a.positions[2].margin_type.as_deref(), Some("isolated"));
}

#[test]
fn algo_sequence_reads_rounded_order_id_as_u64_and_ai_as_string() {
    let events = read_sequence("algo_trigger_sequence.real_2025.json");
    let names: Vec<&str> = events.iter().map(UserEvent::name).collect();
    assert_eq!(
        names,
        [
            "ALGO_UPDATE",
            "ALGO_UPDATE",
            "ORDER_TRADE_UPDATE",
            "ORDER_TRADE_UPDATE",
            "ALGO_UPDATE",
            "ALGO_UPDATE"
        ]
    );
    let UserEvent::OrderTradeUpdate(fill) = &events[3] else {
        panic!("expected ORDER_TRADE_UPDATE");
    };
    // The logger rounded the id through f64; it is still a JSON integer and must read as u64.
    assert_eq!(fill.order.order_id, 8_389_766_049_535_966_000);
    assert_eq!(fill.order.strategy_type.as_deref(), Some("ALGO_CONDITION"));
    assert_eq!(
        (fill.order.si, fill.order.ss),
        (Some(2_000_000_037_542_090), Some(-1))
    );
    let UserEvent::AlgoUpdate(triggered) = &events[4] else {
        panic!("expected ALGO_UPDATE");
    };
    assert_eq!(
        triggered.order.triggered_order_id(),
        Some(8_389_766_049_535_966_587)
    );
    assert_eq!(triggered.order.algo_id, 2_000_000_037_542_090);
    let UserEvent::AlgoUpdate(new) = &events[0] else {
        panic!("expected ALGO_UPDATE");
    };
    assert_eq!(new.order.triggered_order_id.as_deref(), Some(""));
    assert_eq!(new.order.triggered_order_id(), None);
}

#[test]
fn algo_update_docs_and_wrapped_captures_read() {
    let docs: AlgoUpdateEvent<'_> = read("algo_update.docs.json");
    assert_eq!(docs.order.status, "CANCELED");
    assert_eq!(
        docs.order.reject_reason.as_deref(),
        Some("Reduce Only reject")
    );
    let finished: AlgoUpdateEvent<'_> = read_wrapped("algo_update.real_finished_2025.json");
    assert_eq!(finished.order.triggered_order_id(), Some(88_937_381_063));
    assert_eq!(finished.order.executed_qty, Some(dec!(38)));
    let triggering: AlgoUpdateEvent<'_> = read_wrapped("algo_update.real_triggering_2025.json");
    assert_eq!(triggering.order.avg_price, None);
}

#[test]
fn deprecated_and_strategy_events_read() {
    let reject: ConditionalOrderTriggerRejectEvent<'_> =
        read("conditional_order_trigger_reject.docs.json");
    assert_eq!(reject.reject.order_id, 155_618_472_834);
    let strategy: StrategyUpdateEvent<'_> = read("strategy_update.docs.json");
    assert_eq!(
        (strategy.strategy.strategy_id, strategy.strategy.op_code),
        (176_054_594, Some(8007))
    );
    let grid: GridUpdateEvent<'_> = read("grid_update.docs.json");
    assert_eq!(grid.grid.unmatched_qty, Some(dec!(-0.001)));
    let expired: ListenKeyExpiredEvent<'_> = read("listen_key_expired.docs.json");
    assert_eq!(expired.event_time, 1_736_996_475_556);
}

#[test]
fn margin_call_and_config_updates_read() {
    let call: MarginCallEvent<'_> = read("margin_call.docs.json");
    assert_eq!(call.cross_wallet_balance, Some(dec!(3.16812045)));
    assert_eq!(call.positions[0].margin_type.as_deref(), Some("CROSSED"));
    assert_eq!(call.positions[0].maint_margin, dec!(1.614445));
    let leverage: AccountConfigUpdateEvent<'_> =
        read("account_config_update.real_leverage_2021.json");
    assert_eq!(leverage.symbol_config.map(|c| c.leverage), Some(19));
    let multi: AccountConfigUpdateEvent<'_> =
        read("account_config_update.real_multi_assets_2021.json");
    assert_eq!(multi.account_config.map(|c| c.multi_assets), Some(false));
}

#[test]
fn mark_price_combined_wrapper_and_all_market_array_read() {
    let frame: CombinedFrame<'_> = read("mark_price_update.real_combined_btcusdt_2022.json");
    assert_eq!(frame.stream, "btcusdt@markPrice");
    let inner: MarkPriceUpdateEvent<'_> =
        read_wrapped("mark_price_update.real_combined_btcusdt_2022.json");
    assert_eq!(inner.mark_price, dec!(29968.93335956));
    assert_eq!(inner.mark_price_average, None);

    let all: Vec<MarkPriceUpdateEvent<'_>> =
        read("mark_price_update.real_all_market_arr_2022.json");
    assert_eq!(all.len(), 168);
    assert_eq!(all[0].symbol, "BTCUSDT");
    assert_eq!(all[2].funding_rate, Some(dec!(-0.00023532)));

    let docs: MarkPriceUpdateEvent<'_> = read("mark_price_update.docs.json");
    assert_eq!(docs.mark_price_average, Some(dec!(11794.15000000)));
}

#[test]
fn ccxt_recorded_integers_as_strings_read_as_integers() {
    let funding: Vec<IncomeRow> = read("income_funding_fee.real_papi_2024.json");
    assert_eq!(funding[0].tran_id, 8_082_457_372_019_390_060);
    assert_eq!(funding[0].time, 1_707_465_600_000);
    assert_eq!(funding[0].trade_id, None);
    let trades: Vec<UserTrade> = read("user_trades.real_2023.json");
    assert_eq!(
        (trades[0].id, trades[0].order_id),
        (272_536_245, 3_524_852_987)
    );
    assert_eq!(trades[0].time, 1_699_972_836_419);
    let risk: Vec<PositionRisk> = read("position_risk_v3.real_oneway_2024.json");
    assert_eq!(
        (risk[0].adl, risk[0].update_time),
        (Some(2), Some(1_722_161_166_529))
    );
    let account: AccountInformation = read("account_v2.real_single_asset_2023.json");
    assert_eq!(
        (account.fee_tier, account.trade_group_id),
        (Some(0), Some(-1))
    );
}

#[test]
fn income_trade_id_is_a_string_or_empty() {
    let rows: Vec<IncomeRow> = read("income.docs.json");
    assert_eq!(rows[0].trade_id, None);
    assert_eq!(rows[1].trade_id, Some(2_059_192));
    assert_eq!(rows[1].income, dec!(-0.01));
}

#[test]
fn account_v2_and_v3_read_with_one_type() {
    let v2: AccountInformation = read("account_v2.docs_single_asset.json");
    assert_eq!(v2.positions[0].entry_price, Some(dec!(0.00000)));
    assert_eq!(v2.positions[0].leverage, Some(100));
    assert_eq!(v2.positions[0].isolated, Some(true));
    assert_eq!(v2.fee_burn, Some(true));
    let v3: AccountInformation = read("account_v3.real_multi_assets_2024.json");
    assert_eq!(v3.assets.len(), 6);
    assert_eq!(v3.positions[0].entry_price, None);
    assert_eq!(v3.total_margin_balance, Some(dec!(26.26840422)));
    // marginBalance = walletBalance + unrealizedProfit, per PROTOCOL §3.2.
    let total = v3.total_wallet_balance.unwrap() + v3.total_unrealized_profit.unwrap();
    assert_eq!(Some(total), v3.total_margin_balance);
}

#[test]
fn position_risk_v2_reads_string_flags_and_leverage() {
    let rows: Vec<PositionRisk> = read("position_risk_v2.docs_hedge.json");
    assert_eq!(rows[0].leverage, Some(4));
    assert_eq!(rows[0].is_auto_add_margin, Some(false));
    assert_eq!(rows[0].margin_type.as_deref(), Some("cross"));
    let old: Vec<PositionRisk> = read("position_risk_v2.real_oneway_2023.json");
    assert_eq!(old[0].break_even_price, None);
    assert_eq!(old[0].position_amt, dec!(67797));
}

#[test]
fn balances_listen_keys_time_error_and_mode_read() {
    let balances: Vec<AccountBalance> = read("balance_v3.docs.json");
    assert_eq!(balances[0].balance, dec!(122607.35137903));
    assert_eq!(balances[0].account_alias.as_deref(), Some("SgsR"));
    let key: ListenKeyResponse = read("listen_key_put.docs.json");
    assert!(key.listen_key.starts_with("3HBnt"));
    let time: ServerTime = read("server_time.sdk_test.json");
    assert_eq!(time.server_time, 1_499_827_319_559);
    let error: ApiError = read("error.docs.json");
    assert_eq!(error.code, -1121);
    assert_eq!(error.to_string(), "Binance error -1121: Invalid symbol.");
    let mode: PositionSideDual = read("position_side_dual.nautilus_fixture.json");
    assert!(mode.dual_side_position);
}

#[test]
fn premium_index_reads_as_one_or_many() {
    let one: OneOrMany<PremiumIndex> = read("premium_index.docs_single.json");
    assert!(matches!(one, OneOrMany::One(_)));
    let many: OneOrMany<PremiumIndex> = read("premium_index.docs_all.json");
    let rows = many.into_vec();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].last_funding_rate, Some(dec!(0.00038246)));
    assert_eq!(rows[0].next_funding_time, Some(1_597_392_000_000));
}

#[test]
fn leverage_bracket_numbers_read_as_exact_decimals() {
    let many: OneOrMany<SymbolLeverageBrackets> = read("leverage_bracket.docs.json");
    let entries = many.into_vec();
    let b = &entries[0].brackets[0];
    assert_eq!(entries[0].notional_coef, Some(dec!(1.5)));
    assert_eq!((b.bracket, b.initial_leverage), (1, 75));
    assert_eq!(b.maint_margin_ratio, dec!(0.0065));
    assert_eq!(
        (b.notional_cap, b.notional_floor, b.cum),
        (dec!(10000), dec!(0), dec!(0))
    );

    let brief = r#"[{"symbol":"BTCUSDT","notionalCoef":1.5,"brackets":[{"bracket":1,"initialLeverage":125,
        "notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.004,"cum":0.0},{"bracket":2,
        "initialLeverage":100,"notionalCap":250000,"notionalFloor":50000,"maintMarginRatio":0.005,"cum":50.0}]}]"#;
    let entries: Vec<SymbolLeverageBrackets> = decode_json(brief).unwrap();
    let b = &entries[0].brackets;
    assert_eq!(
        (b[0].maint_margin_ratio, b[1].maint_margin_ratio),
        (dec!(0.004), dec!(0.005))
    );
    assert_eq!(b[1].cum, dec!(50));
    assert_eq!(b[0].maint_margin_ratio.to_string(), "0.004");

    let single: OneOrMany<SymbolLeverageBrackets> = read("leverage_bracket.docs_single.json");
    assert!(matches!(single, OneOrMany::One(ref e) if e.symbol == "ETHUSDT"));
}

#[test]
fn user_trades_read_margin_asset_when_present() {
    let trades: Vec<UserTrade> = read("user_trades.real_2022.json");
    assert_eq!(trades[1].realized_pnl, dec!(-0.00325000));
    assert_eq!(trades[1].commission, dec!(0.00555800));
    assert_eq!(trades[1].margin_asset.as_deref(), Some("USDT"));
    let docs: Vec<UserTrade> = read("user_trades.docs.json");
    assert_eq!(docs[0].margin_asset, None);
    assert_eq!(docs[0].position_side, "SHORT");
}
