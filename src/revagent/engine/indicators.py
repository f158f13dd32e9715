"""Indicators a discretionary trader reads, computed by the project (never by the model).

Pure functions over candle series (oldest first), in binary floating point: these are chart
readings, not money. Each returns a list aligned with the input, `None` where the indicator is not
defined yet (not enough candles).

- `ema(values, n)`: exponential moving average, smoothing 2/(n+1), seeded with the SMA of the
  first n values;
- `rsi(closes, n=14)`: Wilder's RSI (Wilder smoothing of gains and losses);
- `atr(highs, lows, closes, n=14)`: Wilder's average true range;
- `vwap(highs, lows, closes, volumes)`: cumulative volume-weighted average of the typical price
  (h+l+c)/3 over the whole series (anchored at its first candle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def ema(values: Sequence[float], n: int) -> list[float | None]:
    if n < 1:
        raise ValueError("an EMA period is at least 1")
    out: list[float | None] = [None] * len(values)
    if len(values) < n:
        return out
    k = 2.0 / (n + 1)
    current = sum(values[:n]) / n
    out[n - 1] = current
    for i in range(n, len(values)):
        current = values[i] * k + current * (1 - k)
        out[i] = current
    return out


def rsi(closes: Sequence[float], n: int = 14) -> list[float | None]:
    out: list[float | None] = [None] * len(closes)
    if len(closes) <= n:
        return out
    gains = losses = 0.0
    for i in range(1, n + 1):
        change = closes[i] - closes[i - 1]
        gains += max(change, 0.0)
        losses += max(-change, 0.0)
    avg_gain, avg_loss = gains / n, losses / n
    out[n] = _rsi_value(avg_gain, avg_loss)
    for i in range(n + 1, len(closes)):
        change = closes[i] - closes[i - 1]
        avg_gain = (avg_gain * (n - 1) + max(change, 0.0)) / n
        avg_loss = (avg_loss * (n - 1) + max(-change, 0.0)) / n
        out[i] = _rsi_value(avg_gain, avg_loss)
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    rs = avg_gain / avg_loss
    return 100.0 - 100.0 / (1.0 + rs)


def true_ranges(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float]) -> list[float]:
    out = []
    for i in range(len(closes)):
        if i == 0:
            out.append(highs[0] - lows[0])
        else:
            prev = closes[i - 1]
            out.append(max(highs[i] - lows[i], abs(highs[i] - prev), abs(lows[i] - prev)))
    return out


def atr(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], n: int = 14) -> list[float | None]:
    tr = true_ranges(highs, lows, closes)
    out: list[float | None] = [None] * len(tr)
    if len(tr) < n:
        return out
    current = sum(tr[:n]) / n
    out[n - 1] = current
    for i in range(n, len(tr)):
        current = (current * (n - 1) + tr[i]) / n
        out[i] = current
    return out


def vwap(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float],
         volumes: Sequence[float]) -> list[float | None]:
    out: list[float | None] = []
    pv = vol = 0.0
    for h, lo, c, v in zip(highs, lows, closes, volumes, strict=True):
        pv += (h + lo + c) / 3.0 * v
        vol += v
        out.append(pv / vol if vol > 0 else None)
    return out


@dataclass(frozen=True, slots=True)
class IndicatorSet:
    """The latest value of each indicator (None when the series is too short)."""

    ema20: float | None
    ema50: float | None
    rsi14: float | None
    atr14: float | None
    vwap: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """Every indicator aligned with the candles."""

    ema20: list[float | None]
    ema50: list[float | None]
    rsi14: list[float | None]
    atr14: list[float | None]
    vwap: list[float | None]

    def latest(self) -> IndicatorSet:
        def last(xs: list[float | None]) -> float | None:
            return xs[-1] if xs else None

        return IndicatorSet(last(self.ema20), last(self.ema50), last(self.rsi14), last(self.atr14), last(self.vwap))


def compute(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float],
            volumes: Sequence[float]) -> Series:
    """EMA 20/50 of the closes, RSI 14, ATR 14 and VWAP."""
    return Series(ema(closes, 20), ema(closes, 50), rsi(closes, 14), atr(highs, lows, closes, 14),
                  vwap(highs, lows, closes, volumes))
