"""A consumer of acctmon's public P&L and reconciliation subjects, written from the README alone.

Usage: pnl_client.py NATS_URL CONTROL_PREFIX

Subscribes (core NATS, nats-py) to `trading.pnl.>` and `trading.recon.>`, decodes every message by
its Content-Type header (MessagePack with msgpack, or JSON), and checks it against the README: the
subject's tokens, the Nats-Msg-Id, every documented field present with its documented type and no
other field, and the figures consistent with each other. Once subscribed it publishes an empty
message on `CONTROL_PREFIX.ready`; on a message on `CONTROL_PREFIX.stop` it drains and prints one
JSON object on stdout (python_client.rs asserts on it). A failed check does not stop the client: it
is listed under "errors". Anything unexpected (a payload that does not decode, an exception) ends
the script with a traceback and a non-zero exit status.
"""

import asyncio
import json
import re
import sys
from collections import Counter, defaultdict, deque
from decimal import Decimal

import msgpack
import nats

MSGPACK = "application/msgpack"
JSON = "application/json"
SIDES = ("BOTH", "LONG", "SHORT")
RECON_KINDS = ("realized", "position", "entry_price", "wallet")
# A decimal string: optional minus, digits, optional fraction; never an exponent, never a float.
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Messages kept per position leg and per account, for the comparison with KV: all of them (a run holds a
# few thousand), since mark-driven republishes may follow the entry the test read from KV by any number.
RECENT = None
MAX_ERRORS = 100
# A sanity range for millisecond times: 2020-01-01 .. 2100-01-01.
MS_MIN, MS_MAX = 1_577_836_800_000, 4_102_444_800_000

# The README's field tables: name -> type.
#   str, dec (decimal string), dec? (decimal string or null), uint, int (ms), bool?,
#   side, map (asset -> decimal string)
POSITION_FIELDS = {
    "schema": "str",
    "account": "str",
    "symbol": "str",
    "side": "side",
    "qty": "dec",
    "entry_price": "dec",
    "mark_price": "dec?",
    "unrealized": "dec?",
    "realized_gross": "dec",
    "commission": "dec",
    "commission_native": "map",
    "funding": "dec",
    "realized_net": "dec",
    "margin_asset": "str",
    "fills": "uint",
    "applied_seq": "uint",
    "event_time": "int",
    "updated_at": "int",
}
SUMMARY_FIELDS = {
    "schema": "str",
    "account": "str",
    "hedge_mode": "bool?",
    "balances": "map",
    "wallet": "dec?",
    "unrealized": "dec",
    "equity": "dec?",
    "maint_margin": "dec?",
    "margin_ratio": "dec?",
    "realized_gross": "dec",
    "commission": "dec",
    "funding": "dec",
    "realized_net": "dec",
    "daily_pnl": "dec?",
    "drawdown": "dec?",
    "max_drawdown": "dec",
    "open_positions": "uint",
    "applied_seq": "uint",
    "event_time": "int",
    "updated_at": "int",
}
RECON_FIELDS = {
    "schema": "str",
    "account": "str",
    "kind": "str",
    "subject": "str",
    "ours": "dec",
    "exchange": "dec",
    "time": "int",
    "seq": "uint",
}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_dec(v):
    return isinstance(v, str) and DECIMAL.fullmatch(v) is not None


def type_ok(kind, v):
    if kind == "str":
        return isinstance(v, str) and v != ""
    if kind == "dec":
        return is_dec(v)
    if kind == "dec?":
        return v is None or is_dec(v)
    if kind == "uint":
        return is_int(v) and v >= 0
    if kind == "int":
        return is_int(v)
    if kind == "bool?":
        return v is None or isinstance(v, bool)
    if kind == "side":
        return v in SIDES
    if kind == "map":
        return isinstance(v, dict) and all(
            isinstance(k, str) and k != "" and is_dec(d) for k, d in v.items()
        )
    raise ValueError(kind)


def dec(v):
    return None if v is None else Decimal(v)


def unescape(token):
    """The README's escaping rule, reversed: `=XX` is one byte of the UTF-8 text."""
    out, i, raw = bytearray(), 0, token.encode()
    while i < len(raw):
        if raw[i : i + 1] == b"=":
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out += raw[i : i + 1]
            i += 1
    return out.decode()


class Client:
    def __init__(self):
        self.errors = []
        self.error_count = 0
        self.content_types = {"pnl": Counter(), "recon": Counter()}
        self.counts = Counter()
        self.checks = Counter()
        self.seen_ids = set()
        self.legs = defaultdict(dict)  # account -> "SYMBOL.SIDE" -> latest position payload
        self.recent_positions = defaultdict(lambda: deque(maxlen=RECENT))
        self.summaries = {}  # account -> latest summary payload
        self.recent_summaries = defaultdict(lambda: deque(maxlen=RECENT))
        self.sides = defaultdict(set)
        self.native_assets = defaultdict(set)
        self.recon = []

    def fail(self, where, message):
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"{where}: {message}")

    def check(self, condition, where, message):
        if not condition:
            self.fail(where, message)
        return condition

    # Decoding -------------------------------------------------------------------------------

    def decode(self, family, msg):
        headers = msg.headers or {}
        ctype = headers.get("Content-Type")
        self.content_types[family][str(ctype)] += 1
        if ctype == MSGPACK:
            # raw=False: MessagePack strings become str; binary would stay bytes and fail the checks.
            return msgpack.unpackb(msg.data, raw=False)
        if ctype == JSON:
            # Amounts are strings in JSON too: a JSON float would come back as a tuple and fail the
            # type checks instead of passing as a Python float.
            return json.loads(msg.data, parse_float=lambda s: ("float", s))
        raise ValueError(f"{msg.subject}: unknown Content-Type {ctype!r}")

    def fields(self, where, payload, table):
        if not self.check(isinstance(payload, dict), where, f"not a map: {payload!r}"):
            return False
        missing = sorted(set(table) - set(payload))
        extra = sorted(set(payload) - set(table))
        self.check(not missing, where, f"missing fields {missing}")
        self.check(not extra, where, f"undocumented fields {extra}")
        ok = not missing
        for name, kind in table.items():
            if name in payload and not type_ok(kind, payload[name]):
                self.fail(where, f"{name} = {payload[name]!r} is not {kind}")
                ok = False
        return ok

    def msg_id(self, msg):
        """The Nats-Msg-Id, or None for a repeat (what a core subscriber must drop)."""
        mid = (msg.headers or {}).get("Nats-Msg-Id")
        if not self.check(bool(mid), msg.subject, "no Nats-Msg-Id header"):
            return ""
        if mid in self.seen_ids:
            self.counts["duplicates"] += 1
            return None
        self.seen_ids.add(mid)
        return mid

    # trading.pnl.> ---------------------------------------------------------------------------

    async def on_pnl(self, msg):
        payload = self.decode("pnl", msg)
        mid = self.msg_id(msg)
        if mid is None:
            return
        tokens = msg.subject.split(".")
        if len(tokens) == 6 and tokens[3] == "position":
            self.position(msg.subject, tokens, mid, payload)
        elif len(tokens) == 4 and tokens[3] == "summary":
            self.summary(msg.subject, tokens, mid, payload)
        else:
            self.fail(msg.subject, "not a documented trading.pnl subject")

    def position(self, subject, tokens, mid, p):
        self.counts["positions"] += 1
        account, symbol, side = tokens[2], unescape(tokens[4]), tokens[5]
        if not self.fields(subject, p, POSITION_FIELDS):
            return
        where = f"{subject} [{mid}]"
        self.check(p["schema"] == "pnl.position/1", where, f"schema {p['schema']!r}")
        self.check(ACCOUNT.fullmatch(account) is not None, where, "account token")
        self.check(p["account"] == account, where, f"account {p['account']!r} in the payload")
        self.check(p["symbol"] == symbol, where, f"symbol {p['symbol']!r} in the payload")
        self.check(p["side"] == side, where, f"side {p['side']!r} in the payload")
        m = re.fullmatch(r"pnl:([^:]+):(.+)\.(BOTH|LONG|SHORT):([0-9]+)(:m[0-9]+)?", mid)
        if self.check(m is not None, where, "Nats-Msg-Id shape"):
            self.check(
                # The id names the symbol as Binance publishes it, not escaped as in the subject.
                m.group(1, 2, 3) == (account, symbol, side) and int(m.group(4)) == p["applied_seq"],
                where,
                "Nats-Msg-Id does not name this leg and its applied_seq",
            )
        for name in ("event_time", "updated_at"):
            self.check(MS_MIN < p[name] < MS_MAX, where, f"{name} {p[name]} is not a time in ms")

        qty, entry = dec(p["qty"]), dec(p["entry_price"])
        mark, unrealized = dec(p["mark_price"]), dec(p["unrealized"])
        gross, commission, funding = dec(p["realized_gross"]), dec(p["commission"]), dec(p["funding"])
        # The books: net = gross - commission + funding (funding paid is negative).
        self.check(
            dec(p["realized_net"]) == gross - commission + funding,
            where,
            f"realized_net {p['realized_net']} != {gross} - {commission} + {funding}",
        )
        self.checks["realized_net"] += 1
        if funding != 0:
            self.checks["with_funding"] += 1
        if side == "LONG":
            self.check(qty >= 0, where, f"LONG leg with qty {qty}")
        if side == "SHORT":
            self.check(qty <= 0, where, f"SHORT leg with qty {qty}")
        if qty == 0:
            self.check(entry == 0, where, f"flat with entry_price {entry}")
        else:
            self.check(entry > 0, where, f"open with entry_price {entry}")
        self.check((mark is None) == (unrealized is None), where, "mark_price and unrealized")
        if mark is not None and unrealized is not None:
            # entry_price is published to 12 decimals, unrealized from the exact cost basis.
            expected = qty * (mark - entry)
            self.check(
                abs(unrealized - expected) <= abs(qty) * Decimal("1e-12") + Decimal("1e-16"),
                where,
                f"unrealized {unrealized} != qty x (mark - entry) = {expected}",
            )
            self.checks["unrealized"] += 1
        self.check(p["margin_asset"] == "USDT", where, f"margin_asset {p['margin_asset']}")
        self.check(p["margin_asset"] not in p["commission_native"], where, "margin asset in commission_native")

        key = f"{symbol}.{side}"
        previous = self.legs[account].get(key)
        if previous is not None:
            self.check(p["applied_seq"] >= previous["applied_seq"], where, "applied_seq went back")
            self.check(p["fills"] >= previous["fills"], where, "fills went back")
        self.legs[account][key] = p
        self.recent_positions[f"{account}.{key}"].append(p)
        self.sides[account].add(side)
        self.native_assets[account].update(p["commission_native"])

    def summary(self, subject, tokens, mid, s):
        self.counts["summaries"] += 1
        account = tokens[2]
        if not self.fields(subject, s, SUMMARY_FIELDS):
            return
        where = f"{subject} [{mid}]"
        self.check(s["schema"] == "pnl.summary/1", where, f"schema {s['schema']!r}")
        self.check(s["account"] == account, where, f"account {s['account']!r} in the payload")
        m = re.fullmatch(r"pnl:([^:]+):summary:([0-9]+)(:m[0-9]+)?", mid)
        if self.check(m is not None, where, "Nats-Msg-Id shape"):
            self.check(
                m.group(1) == account and int(m.group(2)) == s["applied_seq"],
                where,
                "Nats-Msg-Id does not name this account and its applied_seq",
            )
        for name in ("event_time", "updated_at"):
            self.check(MS_MIN < s[name] < MS_MAX, where, f"{name} {s[name]} is not a time in ms")

        gross, commission, funding = dec(s["realized_gross"]), dec(s["commission"]), dec(s["funding"])
        self.check(
            dec(s["realized_net"]) == gross - commission + funding,
            where,
            f"realized_net {s['realized_net']} != {gross} - {commission} + {funding}",
        )
        wallet, unrealized, equity = dec(s["wallet"]), dec(s["unrealized"]), dec(s["equity"])
        self.check((wallet is None) == (equity is None), where, "wallet and equity")
        if equity is not None:
            self.check(equity == wallet + unrealized, where, f"equity {equity} != {wallet} + {unrealized}")
            self.checks["equity"] += 1
        maint, ratio = dec(s["maint_margin"]), dec(s["margin_ratio"])
        if ratio is not None:
            self.check(maint is not None and equity is not None and equity > 0, where, "margin_ratio without its terms")
            if maint is not None and equity:
                # Published to 8 decimals.
                self.check(
                    abs(ratio - maint / equity) <= Decimal("0.5e-8"),
                    where,
                    f"margin_ratio {ratio} != {maint} / {equity}",
                )
                self.checks["margin_ratio"] += 1
        max_dd, dd = dec(s["max_drawdown"]), dec(s["drawdown"])
        self.check(max_dd >= 0, where, f"max_drawdown {max_dd}")
        if dd is not None:
            self.check(0 <= dd <= max_dd, where, f"drawdown {dd} outside [0, max_drawdown {max_dd}]")

        # Positions are published before their account's summary: the legs received so far are the
        # legs this summary adds up.
        legs = list(self.legs[account].values())
        stale = [p for p in legs if p["applied_seq"] > s["applied_seq"]]
        self.check(not stale, where, "a leg newer than its summary arrived first")
        self.check(
            gross == sum((dec(p["realized_gross"]) for p in legs), Decimal(0)),
            where,
            f"realized_gross {gross} is not the sum over the legs",
        )
        self.check(
            commission == sum((dec(p["commission"]) for p in legs), Decimal(0)),
            where,
            f"commission {commission} is not the sum over the legs",
        )
        legs_unrealized = sum((dec(p["unrealized"]) for p in legs if p["unrealized"] is not None), Decimal(0))
        self.check(
            unrealized == legs_unrealized,
            where,
            f"unrealized {unrealized} is not the sum over the legs ({legs_unrealized})",
        )
        open_legs = sum(1 for p in legs if dec(p["qty"]) != 0)
        self.check(s["open_positions"] == open_legs, where, f"open_positions {s['open_positions']} != {open_legs}")
        if s["hedge_mode"] is False:
            # One-way mode: every funding payment names its one leg.
            legs_funding = sum((dec(p["funding"]) for p in legs), Decimal(0))
            self.check(funding == legs_funding, where, f"funding {funding} != legs' {legs_funding}")
        self.checks["summary_vs_legs"] += 1
        self.check(
            all((p["side"] == "BOTH") == (s["hedge_mode"] is not True) for p in legs),
            where,
            f"sides {sorted(self.sides[account])} in hedge_mode {s['hedge_mode']}",
        )

        self.summaries[account] = s
        self.recent_summaries[account].append(s)

    # trading.recon.> -------------------------------------------------------------------------

    async def on_recon(self, msg):
        payload = self.decode("recon", msg)
        mid = self.msg_id(msg)
        if mid is None:
            return
        self.counts["recon"] += 1
        tokens = msg.subject.split(".")
        where = f"{msg.subject} [{mid}]"
        if not self.check(len(tokens) == 4, where, "not trading.recon.<account>.<kind>"):
            return
        if not self.fields(where, payload, RECON_FIELDS):
            return
        r = payload
        account, kind = tokens[2], tokens[3]
        self.check(r["schema"] == "recon/1", where, f"schema {r['schema']!r}")
        self.check(r["account"] == account, where, f"account {r['account']!r}")
        self.check(r["kind"] == kind, where, f"kind {r['kind']!r}")
        self.check(kind in RECON_KINDS, where, f"undocumented kind {kind!r}")
        self.check(r["ours"] != r["exchange"], where, "a report of no difference")
        self.check(MS_MIN < r["time"] < MS_MAX, where, f"time {r['time']}")
        leg = re.fullmatch(r".+\.(BOTH|LONG|SHORT)", r["subject"]) is not None
        self.check(leg == (kind != "wallet"), where, f"subject {r['subject']!r} of a {kind} report")
        prefix = f"recon:{account}:{kind}:{r['subject']}:"
        tail = mid[len(prefix) :] if mid.startswith(prefix) else None
        if r["seq"] == 0:
            self.check(tail == f"settle:{r['time']}", where, "Nats-Msg-Id of a settlement report")
        else:
            self.check(
                tail is not None and re.fullmatch(rf"{r['seq']}:[0-9]+", tail) is not None,
                where,
                "Nats-Msg-Id of a report",
            )
        self.recon.append(r)

    # Output ----------------------------------------------------------------------------------

    def report(self):
        return {
            "counts": dict(self.counts),
            "checks": dict(self.checks),
            "content_types": {k: dict(v) for k, v in self.content_types.items()},
            "errors": self.errors,
            "error_count": self.error_count,
            "sides": {a: sorted(s) for a, s in self.sides.items()},
            "native_assets": {a: sorted(s) for a, s in self.native_assets.items()},
            "summaries": self.summaries,
            "legs": {a: sorted(legs) for a, legs in self.legs.items()},
            "recent_positions": {k: list(v) for k, v in self.recent_positions.items()},
            "recent_summaries": {k: list(v) for k, v in self.recent_summaries.items()},
            "recon": self.recon,
        }


async def main(url, control):
    client = Client()
    stop = asyncio.Event()
    failures = []

    def guarded(handler):
        async def cb(msg):
            try:
                await handler(msg)
            except Exception as e:  # an undecodable payload: fatal, once the client drained
                failures.append(f"{msg.subject}: {e!r}")

        return cb

    async def on_error(e):
        failures.append(f"connection: {e!r}")

    async def on_stop(_msg):
        stop.set()

    nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False)
    await nc.subscribe("trading.pnl.>", cb=guarded(client.on_pnl))
    await nc.subscribe("trading.recon.>", cb=guarded(client.on_recon))
    await nc.subscribe(f"{control}.stop", cb=on_stop)
    await nc.flush()
    await nc.publish(f"{control}.ready", b"")
    await nc.flush()
    await asyncio.wait_for(stop.wait(), timeout=600)
    await nc.drain()
    if failures:
        raise SystemExit("\n".join(failures[:20]))
    json.dump(client.report(), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
