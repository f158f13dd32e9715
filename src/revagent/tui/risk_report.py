"""`/risk` with no arguments: the `risk.show` document (what `revagent risk show` prints) as lines
for a thread: state, multiplier, drawdown and peak, caps and usage per market, every setting with
where its value comes from. Pure (no Textual); reads only the session command's JSON document."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from revagent.tui import format as fmt


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value is None or value == "" else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def risk_report(doc: dict[str, Any]) -> str:
    """The report as plain text lines (the thread shows it as a notice)."""
    st: dict[str, Any] = doc.get("status") or {}
    lines: list[str] = []
    state = str(st.get("state") or "?").upper()
    head = (f"{state}  multiplier {fmt.ratio(_dec(st.get('multiplier')))}  "
            f"drawdown {fmt.pct(_dec(st.get('drawdown')), places=2)}  "
            f"peak {fmt.money(_dec(st.get('peak_equity')))}  penalty {fmt.ratio(_dec(st.get('penalty')))}")
    lines.append(head)
    if st.get("locked_until"):
        lines.append(f"locked until {str(st['locked_until'])[:16].replace('T', ' ')} UTC")
    if st.get("cooldown_until"):
        lines.append(f"cooldown until {str(st['cooldown_until'])[:16].replace('T', ' ')} UTC")
    if st.get("reason"):
        lines.append(f"reason: {st['reason']}")
    usage: dict[str, Any] | None = doc.get("usage")
    if usage:
        lines.append("")
        lines.append("Open risk (USD lost at the stops)      risk        cap")
        rows = [("TOTAL", usage.get("total_open_risk_usd"), usage.get("portfolio_cap_usd"), "")]
        rows += [(m["market"], m.get("open_risk_usd"), m.get("cap_usd"), "  no stop" if m.get("unprotected") else "")
                 for m in usage.get("markets") or ()]
        for name, used, cap, note in rows:
            lines.append(f"  {name:<8}{fmt.money(_dec(used)):>30} {fmt.money(_dec(cap)):>10}{note}")
        lines.append(f"  caps: per trade {fmt.money(_dec(usage.get('per_trade_cap_usd')))}, per market "
                     f"{fmt.money(_dec(usage.get('market_cap_usd')))}, portfolio "
                     f"{fmt.money(_dec(usage.get('portfolio_cap_usd')))}")
    elif doc.get("usage_error"):
        lines.append(f"usage unknown: {doc['usage_error']}")
    settings: dict[str, Any] = doc.get("settings") or {}
    if settings:
        lines.append("")
        lines.append("Settings                               value      source")
        for key, item in settings.items():
            value = item.get("value") if isinstance(item, dict) else item
            source = item.get("source", "") if isinstance(item, dict) else ""
            lines.append(f"  {key:<34} {value!s:>10}  {source}")
    return "\n".join(lines)
