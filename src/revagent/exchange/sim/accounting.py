"""Per-user accounting worked like Hyperliquid: fills (VWAP entry, gross closedPnl, dir, fees), funding,
margin summaries and liquidation prices. Pure functions over `Account`; the caller owns time and events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from revagent.exchange.sim.markets import MarketSpec
from revagent.exchange.sim.model import Account, Leverage, Position
from revagent.exchange.sim.numbers import USD_Q, ZERO, fmt, fmt_px, fmt_usd

TAKER_FEE = Decimal("0.00045")
MAKER_FEE = Decimal("0.00015")
TWO = Decimal(2)


def leverage_of(acct: Account, spec: MarketSpec) -> Leverage:
    lv = acct.leverage.get(spec.name)
    return lv if lv is not None else Leverage(True, spec.default_leverage)


@dataclass(slots=True)
class FillResult:
    wire: dict[str, Any]
    closed_pnl: Decimal
    fee: Decimal
    new_szi: Decimal


def apply_fill(acct: Account, spec: MarketSpec, *, is_buy: bool, px: Decimal, sz: Decimal, crossed: bool,
               time_ms: int, oid: int, tid: int, tx_hash: str, cloid: str | None = None,
               liquidation: dict[str, Any] | None = None) -> FillResult:
    """Book one fill on `acct`: position, entry, realized PnL (gross, before fees), fee; returns the wire fill.

    Opening/adding moves the VWAP entry; closing realizes `close_sz * (px - entry) * sign`; a fill larger than
    the position flips it (dir "Long > Short"/"Short > Long") with the rest opened at `px`.
    """
    coin = spec.name
    pos = acct.positions.get(coin)
    if pos is None:
        pos = acct.positions[coin] = Position()
    lev = leverage_of(acct, spec)
    start = pos.szi
    signed = sz if is_buy else -sz
    new = start + signed
    closed = ZERO
    if start == 0 or (start > 0) == is_buy:
        pos.entry_px = (abs(start) * pos.entry_px + sz * px) / abs(new)
        direction = "Open Long" if is_buy else "Open Short"
        if start == 0:
            pos.cum_open = ZERO
            pos.cum_change = ZERO
        if not lev.is_cross:
            pos.iso_margin += sz * px / lev.value
    else:
        close_sz = min(sz, abs(start))
        sign = 1 if start > 0 else -1
        closed = (close_sz * (px - pos.entry_px) * sign).quantize(USD_Q)
        if not lev.is_cross:
            pos.iso_margin -= pos.iso_margin * close_sz / abs(start)
        if new == 0:
            direction = "Close Long" if start > 0 else "Close Short"
            pos.entry_px = ZERO
            pos.iso_margin = ZERO
        elif (new > 0) == (start > 0):
            direction = "Close Long" if start > 0 else "Close Short"
        else:
            direction = "Long > Short" if start > 0 else "Short > Long"
            pos.entry_px = px
            pos.cum_open = ZERO
            pos.cum_change = ZERO
            pos.iso_margin = abs(new) * px / lev.value if not lev.is_cross else ZERO
    pos.szi = new
    fee = (px * sz * (TAKER_FEE if crossed else MAKER_FEE)).quantize(USD_Q)
    acct.balance += closed - fee
    acct.cum_vlm += px * sz
    if new == 0:
        del acct.positions[coin]
    wire: dict[str, Any] = {
        "coin": coin, "px": fmt(px), "sz": fmt(sz), "side": "B" if is_buy else "A", "time": time_ms,
        "startPosition": fmt(start), "dir": direction, "closedPnl": fmt_usd(closed), "hash": tx_hash, "oid": oid,
        "crossed": crossed, "fee": fmt_usd(fee), "tid": tid, "feeToken": "USDC",
    }
    if cloid is not None:
        wire["cloid"] = cloid
    if liquidation is not None:
        wire["liquidation"] = liquidation
    return FillResult(wire, closed, fee, new)


def funding_payment(pos: Position, oracle_px: Decimal, rate: Decimal) -> Decimal:
    """USDC received (+) or paid (-) by a position for one funding interval: longs pay a positive rate."""
    return (-pos.szi * oracle_px * rate).quantize(USD_Q)


def apply_funding(acct: Account, coin: str, usdc: Decimal) -> None:
    pos = acct.positions[coin]
    acct.balance += usdc
    pos.cum_all -= usdc
    pos.cum_open -= usdc
    pos.cum_change -= usdc


def hourly_funding_rate(premium: Decimal) -> Decimal:
    """Hyperliquid's rule: (premium + clamp(interest - premium, +-0.05%)) per 8h, paid hourly, capped at 4%/h."""
    interest = Decimal("0.0001")  # 0.01% per 8 hours
    eight_hour = premium + max(Decimal("-0.0005"), min(Decimal("0.0005"), interest - premium))
    hourly = eight_hour / 8
    cap = Decimal("0.04")
    return max(-cap, min(cap, hourly))


@dataclass(slots=True)
class PositionView:
    coin: str
    pos: Position
    spec: MarketSpec
    lev: Leverage
    mark: Decimal

    @property
    def ntl(self) -> Decimal:
        return abs(self.pos.szi) * self.mark

    @property
    def upnl(self) -> Decimal:
        return self.pos.szi * (self.mark - self.pos.entry_px)

    @property
    def maintenance(self) -> Decimal:
        """Half the initial margin at the market's max leverage."""
        return self.ntl / (TWO * self.spec.max_leverage)

    @property
    def margin_used(self) -> Decimal:
        if self.lev.is_cross:
            return self.ntl / self.lev.value
        return self.pos.iso_margin + self.upnl


@dataclass(slots=True)
class Summary:
    views: list[PositionView]
    account_value: Decimal
    raw_usd: Decimal
    total_ntl: Decimal
    margin_used: Decimal
    cross_value: Decimal
    cross_raw: Decimal
    cross_ntl: Decimal
    cross_margin: Decimal
    cross_maintenance: Decimal

    @property
    def withdrawable(self) -> Decimal:
        return max(ZERO, self.cross_value - self.cross_margin)


def summarize(acct: Account, specs: dict[str, MarketSpec], marks: dict[str, Decimal]) -> Summary:
    views = [PositionView(c, p, specs[c], leverage_of(acct, specs[c]), marks[c]) for c, p in acct.positions.items()]
    raw = acct.balance - sum((v.pos.szi * v.pos.entry_px for v in views), ZERO)
    av = raw + sum((v.pos.szi * v.mark for v in views), ZERO)
    cross = [v for v in views if v.lev.is_cross]
    iso_margin = sum((v.pos.iso_margin for v in views if not v.lev.is_cross), ZERO)
    cross_raw = acct.balance - iso_margin - sum((v.pos.szi * v.pos.entry_px for v in cross), ZERO)
    cross_value = cross_raw + sum((v.pos.szi * v.mark for v in cross), ZERO)
    return Summary(
        views=views, account_value=av, raw_usd=raw, total_ntl=sum((v.ntl for v in views), ZERO),
        margin_used=sum((v.margin_used for v in views), ZERO), cross_value=cross_value, cross_raw=cross_raw,
        cross_ntl=sum((v.ntl for v in cross), ZERO), cross_margin=sum((v.margin_used for v in cross), ZERO),
        cross_maintenance=sum((v.maintenance for v in cross), ZERO),
    )


def liquidation_px(view: PositionView, summary: Summary) -> Decimal | None:
    """`px - side * avail / |sz| / (1 - side / (2 * maxLev))`; None when it would be <= 0."""
    side = 1 if view.pos.szi > 0 else -1
    if view.lev.is_cross:
        avail = summary.cross_value - summary.cross_maintenance
    else:
        avail = view.pos.iso_margin + view.upnl - view.maintenance
    l_maint = 1 / (TWO * view.spec.max_leverage)
    px = view.mark - side * avail / abs(view.pos.szi) / (1 - side * l_maint)
    return px if px > 0 else None


def clearinghouse_json(summary: Summary, time_ms: int) -> dict[str, Any]:
    """`/info clearinghouseState` with the current field set and order."""
    positions = []
    for v in summary.views:
        lev: dict[str, Any] = {"type": "cross" if v.lev.is_cross else "isolated", "value": v.lev.value}
        if not v.lev.is_cross:
            lev["rawUsd"] = fmt_usd(v.pos.iso_margin - v.pos.szi * v.pos.entry_px)
        initial = abs(v.pos.szi) * v.pos.entry_px / v.lev.value
        liq = liquidation_px(v, summary)
        positions.append({"type": "oneWay", "position": {
            "coin": v.coin, "szi": fmt(v.pos.szi), "leverage": lev, "entryPx": fmt_px(v.pos.entry_px),
            "positionValue": fmt_usd(v.ntl), "unrealizedPnl": fmt_usd(v.upnl),
            "returnOnEquity": fmt_px(v.upnl / initial) if initial else "0.0",
            "liquidationPx": None if liq is None else fmt_px(liq), "marginUsed": fmt_usd(v.margin_used),
            "maxLeverage": v.spec.max_leverage,
            "cumFunding": {"allTime": fmt_usd(v.pos.cum_all), "sinceOpen": fmt_usd(v.pos.cum_open),
                           "sinceChange": fmt_usd(v.pos.cum_change)},
        }})
    margin = {"accountValue": fmt_usd(summary.account_value), "totalNtlPos": fmt_usd(summary.total_ntl),
              "totalRawUsd": fmt_usd(summary.raw_usd), "totalMarginUsed": fmt_usd(summary.margin_used)}
    cross = {"accountValue": fmt_usd(summary.cross_value), "totalNtlPos": fmt_usd(summary.cross_ntl),
             "totalRawUsd": fmt_usd(summary.cross_raw), "totalMarginUsed": fmt_usd(summary.cross_margin)}
    return {"marginSummary": margin, "crossMarginSummary": cross,
            "crossMaintenanceMarginUsed": fmt_usd(summary.cross_maintenance),
            "withdrawable": fmt_usd(summary.withdrawable), "assetPositions": positions, "time": time_ms}
