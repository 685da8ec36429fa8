//! REST responses → domain values: fills, money movements, snapshots, marks, brackets, position mode.

mod common;

use acctmon_binance::ParseError;
use acctmon_binance::decode_json;
use acctmon_binance::rest::{
    AccountBalance, AccountInformation, IncomeRow, OneOrMany, PositionRisk, PositionSideDual,
    PremiumIndex, SymbolLeverageBrackets, UserTrade, parse_balances, parse_income,
    parse_income_row, parse_leverage_brackets, parse_position_mode, parse_premium_index,
    parse_snapshot, parse_user_trade, rows_updated_until,
};
use acctmon_domain::{ConfigChange, Event, FillSource, PositionSide, Side, Timestamp};
use common::{account, fixture};
use rust_decimal_macros::dec;
use serde::de::DeserializeOwned;

fn read<T: DeserializeOwned>(name: &str) -> T {
    decode_json::<T>(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn user_trades_become_rest_fills_with_commission_pnl_and_margin_asset() {
    let rows: Vec<UserTrade> = read("user_trades.real_2022.json");
    let fills: Vec<_> = rows
        .iter()
        .map(|r| parse_user_trade(&account(), r).unwrap())
        .collect();
    let close = &fills[1];
    assert_eq!(close.source, FillSource::Rest);
    assert_eq!((close.trade_id, close.order_id), (82_357_629, 831_238_690));
    assert_eq!(
        (close.side, close.position_side),
        (Side::Buy, Some(PositionSide::Both))
    );
    assert_eq!((close.price, close.qty), (dec!(2779), dec!(0.005)));
    assert_eq!(close.realized_pnl, Some(dec!(-0.00325)));
    let commission = close.commission.as_ref().unwrap();
    assert_eq!(
        (commission.asset.as_str(), commission.amount),
        ("USDT", dec!(0.005558))
    );
    assert_eq!(
        close.margin_asset.as_ref().map(|a| a.as_str()),
        Some("USDT")
    );
    assert_eq!(
        (close.time, close.event_time),
        (Timestamp(1_645_930_333_910), Timestamp(1_645_930_333_910))
    );
    assert!(!close.maker);
    assert_eq!(close.client_order_id, None);
    // Gross P&L of the round trip: (2778.35 − 2779) × 0.005, fees reported apart.
    assert_eq!(
        (dec!(2778.35) - dec!(2779)) * dec!(0.005),
        close.realized_pnl.unwrap()
    );

    let docs: Vec<UserTrade> = read("user_trades.docs.json");
    let fill = parse_user_trade(&account(), &docs[0]).unwrap();
    assert_eq!(
        (fill.position_side, fill.margin_asset),
        (Some(PositionSide::Short), None)
    );
    let ccxt: Vec<UserTrade> = read("user_trades.real_2023.json");
    assert_eq!(
        parse_user_trade(&account(), &ccxt[0]).unwrap().order_id,
        3_524_852_987
    );
}

#[test]
fn income_funding_fee_is_funding_with_its_tran_id() {
    let rows: Vec<IncomeRow> = read("income_funding_fee.real_papi_2024.json");
    let events = parse_income(&account(), &rows).unwrap();
    let [Event::Funding(funding)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(funding.tran_id, Some(8_082_457_372_019_390_060));
    assert_eq!(funding.symbol.as_ref().map(|s| s.as_str()), Some("BTCUSDT"));
    assert_eq!(
        (funding.asset.as_str(), funding.amount),
        ("USDT", dec!(-0.04618913))
    );
    assert_eq!(
        (funding.time, funding.event_time),
        (Timestamp(1_707_465_600_000), Timestamp(1_707_465_600_000))
    );
}

#[test]
fn income_transfer_is_external_and_commission_is_skipped() {
    let rows: Vec<IncomeRow> = read("income.docs.json");
    let events = parse_income(&account(), &rows).unwrap();
    let [Event::Transfer(transfer)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (transfer.reason.as_str(), transfer.amount, transfer.external),
        ("TRANSFER", dec!(-0.375), true)
    );
    assert_eq!(transfer.tran_id, Some(9_689_322_392));
    assert_eq!(parse_income_row(&account(), &rows[1]).unwrap(), None);
}

#[test]
fn income_types_are_classified() {
    let row = |income_type: &str| IncomeRow {
        symbol: String::new(),
        income_type: income_type.to_owned(),
        income: dec!(1),
        asset: "USDT".to_owned(),
        info: None,
        time: 1,
        tran_id: 2,
        trade_id: None,
    };
    for skipped in ["REALIZED_PNL", "COMMISSION"] {
        assert_eq!(
            parse_income_row(&account(), &row(skipped)).unwrap(),
            None,
            "{skipped}"
        );
    }
    for (kind, external) in [
        ("TRANSFER", true),
        ("INTERNAL_TRANSFER", true),
        ("CROSS_COLLATERAL_TRANSFER", true),
        ("STRATEGY_UMFUTURES_TRANSFER", true),
        ("COIN_SWAP_DEPOSIT", true),
        ("COIN_SWAP_WITHDRAW", true),
        ("WELCOME_BONUS", false),
        ("REFERRAL_KICKBACK", false),
        ("COMMISSION_REBATE", false),
        ("API_REBATE", false),
        ("INSURANCE_CLEAR", false),
        ("DELIVERED_SETTELMENT", false),
        ("FEE_RETURN", false),
        ("SOMETHING_NEW", false),
    ] {
        let event = parse_income_row(&account(), &row(kind)).unwrap();
        let Some(Event::Transfer(t)) = event else {
            panic!("{kind}: {event:?}")
        };
        assert_eq!((t.reason.as_str(), t.external), (kind, external));
    }
    let Some(Event::Funding(f)) = parse_income_row(&account(), &row("FUNDING_FEE")).unwrap() else {
        panic!("funding");
    };
    assert_eq!(f.symbol, None, "an empty symbol is no symbol");
}

#[test]
fn snapshot_from_account_v3_takes_entry_price_from_position_risk() {
    let info: AccountInformation = read("account_v3.real_multi_assets_2024.json");
    let risk: Vec<PositionRisk> = read("position_risk_v3.real_oneway_2024.json");
    let mode = PositionSideDual {
        dual_side_position: false,
    };
    let snapshot = parse_snapshot(&account(), &info, &risk, Some(&mode), Timestamp(42)).unwrap();
    assert_eq!(
        (snapshot.time, snapshot.hedge_mode),
        (Timestamp(42), Some(false))
    );
    assert_eq!(snapshot.balances.len(), 6);
    let usdt = snapshot
        .balances
        .iter()
        .find(|b| b.asset.as_str() == "USDT")
        .unwrap();
    assert_eq!(usdt.wallet, dec!(3.72964781));
    let [position] = &snapshot.positions[..] else {
        panic!("{:?}", snapshot.positions)
    };
    assert_eq!(
        (position.symbol.as_str(), position.side),
        ("BTCUSDT", PositionSide::Both)
    );
    assert_eq!(
        (position.qty, position.entry_price),
        (dec!(0.009), dec!(67445.9))
    );
    assert_eq!(
        position.margin_asset.as_ref().map(|a| a.as_str()),
        Some("USDT")
    );
    assert_eq!(position.update_time, Timestamp(1_722_161_166_529));
}

#[test]
fn the_newest_update_time_of_the_account_rows_bounds_a_snapshot_from_below() {
    let mut info: AccountInformation = read("account_v3.real_multi_assets_2024.json");
    // The fixture's newest rows are the USDT asset and the BTCUSDT position, both 1722161166529.
    assert_eq!(rows_updated_until(&info), Some(1_722_161_166_529));
    info.positions[0].update_time = Some(1_722_161_166_600);
    assert_eq!(rows_updated_until(&info), Some(1_722_161_166_600));
    info.assets[0].update_time = Some(1_722_161_170_000);
    assert_eq!(rows_updated_until(&info), Some(1_722_161_170_000));
    info.assets.clear();
    info.positions.clear();
    assert_eq!(rows_updated_until(&info), None);
}

#[test]
fn snapshot_from_account_v3_without_position_risk_is_refused() {
    let info: AccountInformation = read("account_v3.docs_single_asset.json");
    let err = parse_snapshot(&account(), &info, &[], None, Timestamp(0)).unwrap_err();
    assert!(matches!(err, ParseError::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains("entry price of BTCUSDT BOTH"),
        "{err}"
    );
}

#[test]
fn snapshot_from_account_v2_drops_flat_rows_and_uses_its_entry_price() {
    let mut info: AccountInformation = read("account_v2.docs_single_asset.json");
    let snapshot = parse_snapshot(&account(), &info, &[], None, Timestamp(7)).unwrap();
    assert!(snapshot.positions.is_empty(), "the only row is flat");
    assert_eq!(snapshot.hedge_mode, None);
    assert_eq!(snapshot.balances[0].wallet, dec!(23.72469206));

    info.positions[0].position_amt = dec!(0.5);
    info.positions[0].entry_price = Some(dec!(30000.1));
    let snapshot = parse_snapshot(&account(), &info, &[], None, Timestamp(7)).unwrap();
    assert_eq!(snapshot.positions[0].entry_price, dec!(30000.1));
    assert_eq!(snapshot.positions[0].margin_asset, None);
}

#[test]
fn snapshot_in_hedge_mode_matches_position_risk_by_symbol_and_side() {
    let risk: Vec<PositionRisk> = read("position_risk_v3.docs_hedge.json");
    let info: AccountInformation = decode_json(
        r#"{"assets":[{"asset":"USDT","walletBalance":"10"}],"positions":[
            {"symbol":"COMPUSDT","positionSide":"SHORT","positionAmt":"-1.000","updateTime":1708943511656},
            {"symbol":"ADAUSDT","positionSide":"LONG","positionAmt":"30","updateTime":1720736417660},
            {"symbol":"ADAUSDT","positionSide":"SHORT","positionAmt":"0","updateTime":0}]}"#,
    )
    .unwrap();
    let mode: PositionSideDual = read("position_side_dual.docs.json");
    let snapshot = parse_snapshot(&account(), &info, &risk, Some(&mode), Timestamp(1)).unwrap();
    assert_eq!(snapshot.hedge_mode, Some(true));
    let positions: Vec<_> = snapshot
        .positions
        .iter()
        .map(|p| (p.symbol.as_str(), p.side, p.qty, p.entry_price))
        .collect();
    assert_eq!(
        positions,
        [
            ("COMPUSDT", PositionSide::Short, dec!(-1), dec!(70.92841)),
            ("ADAUSDT", PositionSide::Long, dec!(30), dec!(0.385))
        ]
    );
}

#[test]
fn position_risk_v2_rows_give_entry_prices_too() {
    let risk: Vec<PositionRisk> = read("position_risk_v2.real_oneway_2023.json");
    let info: AccountInformation = decode_json(
        r#"{"assets":[],"positions":[{"symbol":"XEMUSDT","positionSide":"BOTH","positionAmt":"67797"}]}"#,
    )
    .unwrap();
    let snapshot = parse_snapshot(&account(), &info, &risk, None, Timestamp(1)).unwrap();
    assert_eq!(snapshot.positions[0].entry_price, dec!(0.0295));
    assert_eq!(snapshot.positions[0].update_time, Timestamp(0));
}

#[test]
fn balances_v2_and_v3_give_wallet_balances() {
    for name in ["balance_v2.docs.json", "balance_v3.docs.json"] {
        let rows: Vec<AccountBalance> = read(name);
        let balances = parse_balances(&rows).unwrap();
        assert_eq!(
            (balances[0].asset.as_str(), balances[0].wallet),
            ("USDT", dec!(122607.35137903))
        );
    }
}

#[test]
fn premium_index_becomes_mark_price() {
    for name in [
        "premium_index.docs_single.json",
        "premium_index.docs_all.json",
    ] {
        let rows = read::<OneOrMany<PremiumIndex>>(name).into_vec();
        let mark = parse_premium_index(&rows[0]).unwrap();
        assert_eq!(mark.symbol.as_str(), "BTCUSDT");
        assert_eq!(mark.mark_price, dec!(11793.63104562));
        assert_eq!(mark.index_price, Some(dec!(11781.80495970)));
        assert_eq!(mark.funding_rate, Some(dec!(0.00038246)));
        assert_eq!(mark.next_funding_time, Some(Timestamp(1_597_392_000_000)));
        assert_eq!(mark.time, Timestamp(1_597_370_495_002));
    }
    let delivery: PremiumIndex = decode_json(
        r#"{"symbol":"BTCUSDT_250328","markPrice":"1","indexPrice":"1","lastFundingRate":"","nextFundingTime":0,"time":5}"#,
    )
    .unwrap();
    let mark = parse_premium_index(&delivery).unwrap();
    assert_eq!((mark.funding_rate, mark.next_funding_time), (None, None));
}

#[test]
fn leverage_brackets_keep_exact_rates_and_order() {
    let entries =
        read::<OneOrMany<SymbolLeverageBrackets>>("leverage_bracket.docs.json").into_vec();
    let brackets = parse_leverage_brackets(&entries).unwrap();
    let b = &brackets[0].brackets[0];
    assert_eq!(brackets[0].symbol.as_str(), "ETHUSDT");
    assert_eq!((b.bracket, b.initial_leverage), (1, 75));
    assert_eq!((b.notional_floor, b.notional_cap), (dec!(0), dec!(10000)));
    assert_eq!((b.maint_margin_ratio, b.cum), (dec!(0.0065), dec!(0)));

    let unordered: Vec<SymbolLeverageBrackets> = decode_json(
        r#"[{"symbol":"BTCUSDT","notionalCoef":1.5,"brackets":[
            {"bracket":2,"initialLeverage":100,"notionalCap":250000,"notionalFloor":50000,"maintMarginRatio":0.005,"cum":50.0},
            {"bracket":1,"initialLeverage":125,"notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.004,"cum":0.0}]}]"#,
    )
    .unwrap();
    let brackets = parse_leverage_brackets(&unordered).unwrap();
    let numbers: Vec<_> = brackets[0]
        .brackets
        .iter()
        .map(|b| (b.bracket, b.maint_margin_ratio, b.cum))
        .collect();
    assert_eq!(
        numbers,
        [(1, dec!(0.004), dec!(0)), (2, dec!(0.005), dec!(50))]
    );
    // Maintenance margin at 60 000 notional: 60 000 × 0.005 − 50 = 250, exactly.
    assert_eq!(dec!(60000) * numbers[1].1 - numbers[1].2, dec!(250));
}

#[test]
fn position_mode_becomes_a_config_update_at_the_given_time() {
    let mode: PositionSideDual = read("position_side_dual.nautilus_fixture.json");
    let update = parse_position_mode(&account(), &mode, Timestamp(99));
    assert_eq!(update.change, ConfigChange::PositionMode { hedge: true });
    assert_eq!(
        (update.time, update.event_time),
        (Timestamp(99), Timestamp(99))
    );
}
