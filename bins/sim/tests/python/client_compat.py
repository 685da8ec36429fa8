"""Drives the simulator with Binance's own Python connector (binance-futures-connector).

Usage: client_compat.py BASE_URL  (for example http://127.0.0.1:8090)

Trades on the account `main` through the connector's public methods only, then prints one JSON
object on stdout with what the connector read back; python_client.rs compares it with the
simulator's own state. Any error of the connector, or an answer that contradicts the requests,
ends the script with a traceback and a non-zero exit status.
"""

import json
import sys
from decimal import Decimal

from binance.error import ClientError
from binance.um_futures import UMFutures

SYMBOL = "BTCUSDT"


class Mismatch(Exception):
    """An answer the connector parsed but that contradicts what was asked."""


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def main(base_url):
    client = UMFutures(key="sim-key-main", secret="sim-secret-main", base_url=base_url, timeout=10)

    # Market data.
    server_time = client.time()["serverTime"]
    check(isinstance(server_time, int) and server_time > 0, f"serverTime {server_time!r}")
    info = client.exchange_info()
    symbols = [s["symbol"] for s in info["symbols"]]
    check(SYMBOL in symbols, f"{SYMBOL} missing from exchangeInfo: {symbols}")
    mark = Decimal(client.mark_price(symbol=SYMBOL)["markPrice"])
    check(mark > 0, f"mark price {mark}")

    # A market order, answered with its fills (newOrderRespType=RESULT).
    market = client.new_order(
        symbol=SYMBOL, side="BUY", type="MARKET", quantity=0.01, newOrderRespType="RESULT"
    )
    check(market["status"] == "FILLED", f"market order not filled: {market}")
    check(Decimal(market["executedQty"]) == Decimal("0.01"), f"executedQty: {market}")

    # A limit order far above the mark rests; it is listed, queried, then cancelled.
    far = (mark * Decimal("1.5")).quantize(Decimal("0.1"))
    limit = client.new_order(
        symbol=SYMBOL,
        side="SELL",
        type="LIMIT",
        timeInForce="GTC",
        quantity=0.01,
        price=str(far),
    )
    limit_id = limit["orderId"]
    check(limit["status"] == "NEW", f"limit order not resting: {limit}")
    # get_orders is GET /fapi/v1/openOrders; get_open_orders is the single-order
    # GET /fapi/v1/openOrder.
    open_ids = [o["orderId"] for o in client.get_orders(symbol=SYMBOL)]
    check(limit_id in open_ids, f"order {limit_id} not among open orders {open_ids}")
    one = client.get_open_orders(symbol=SYMBOL, orderId=limit_id)
    check(one["orderId"] == limit_id and one["status"] == "NEW", f"open order: {one}")
    queried = client.query_order(symbol=SYMBOL, orderId=limit_id)
    check(queried["status"] == "NEW", f"queried order: {queried}")
    check(Decimal(queried["price"]) == far, f"queried price {queried['price']} != {far}")
    cancelled = client.cancel_order(symbol=SYMBOL, orderId=limit_id)
    check(cancelled["status"] == "CANCELED", f"cancel answer: {cancelled}")
    open_after = [o["orderId"] for o in client.get_orders(symbol=SYMBOL)]
    check(limit_id not in open_after, f"order {limit_id} still open after cancel")

    # Account reads.
    account = client.account()
    account_usdt = next(a for a in account["assets"] if a["asset"] == "USDT")
    account_position = next(
        (p for p in account["positions"] if p["symbol"] == SYMBOL), {"positionAmt": "0"}
    )
    balance = next(b for b in client.balance() if b["asset"] == "USDT")
    risk = [p for p in client.get_position_risk(symbol=SYMBOL) if p["symbol"] == SYMBOL]
    check(len(risk) == 1, f"one-way account has one {SYMBOL} position: {risk}")
    trades = client.get_account_trades(symbol=SYMBOL)
    market_trades = [t for t in trades if t["orderId"] == market["orderId"]]
    check(
        sum(Decimal(t["qty"]) for t in market_trades) == Decimal(market["executedQty"]),
        f"fills of order {market['orderId']} do not add up to its executedQty",
    )
    income = client.get_income_history()
    brackets = client.leverage_brackets(symbol=SYMBOL)
    if isinstance(brackets, list):
        brackets = next(b for b in brackets if b["symbol"] == SYMBOL)
    check(len(brackets["brackets"]) > 0, f"no leverage brackets: {brackets}")
    leverage = client.change_leverage(symbol=SYMBOL, leverage=10)
    check(leverage["leverage"] == 10, f"change_leverage answer: {leverage}")
    leverage_after = next(
        p for p in client.get_position_risk(symbol=SYMBOL) if p["symbol"] == SYMBOL
    )["leverage"]

    # User data stream keys (API key only, no signature).
    listen_key = client.new_listen_key()["listenKey"]
    renewed = client.renew_listen_key(listen_key)

    # Errors come back as the connector's ClientError with Binance's code.
    try:
        client.new_order(symbol="NOPEUSDT", side="BUY", type="MARKET", quantity=0.01)
    except ClientError as error:
        error_status, error_code, error_message = (
            error.status_code,
            error.error_code,
            error.error_message,
        )
    else:
        raise Mismatch("an order on NOPEUSDT was accepted")
    check(error_code == -1121, f"NOPEUSDT order: {error_status} {error_code} {error_message}")

    summary = {
        "server_time": server_time,
        "symbols": symbols,
        "mark_price": str(mark),
        "market_order_id": market["orderId"],
        "market_status": market["status"],
        "market_executed_qty": market["executedQty"],
        "market_avg_price": market["avgPrice"],
        "limit_order_id": limit_id,
        "limit_price": str(far),
        "limit_status_after_cancel": cancelled["status"],
        "position_amt": risk[0]["positionAmt"],
        "position_side": risk[0]["positionSide"],
        "entry_price": risk[0]["entryPrice"],
        "account_position_amt": account_position["positionAmt"],
        "wallet_usdt": account_usdt["walletBalance"],
        "balance_usdt": balance["balance"],
        "trade_ids": [t["id"] for t in trades],
        "market_trade_ids": [t["id"] for t in market_trades],
        "trade_count": len(trades),
        "income_count": len(income),
        "bracket_count": len(brackets["brackets"]),
        "leverage": leverage["leverage"],
        "leverage_after": leverage_after,
        "listen_key": listen_key,
        "renewed": renewed,
        "error_status": error_status,
        "error_code": error_code,
        "error_message": error_message,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: client_compat.py BASE_URL")
    main(sys.argv[1])
