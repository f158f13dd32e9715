"""A market entry's verdict is warm (issue 18.6): the gateway sizes it on a copy of the account view
with the market's book; the copy shares the view's risk sums (the book changes none of them) instead
of summing every position and order again, and the verdict is the one of a freshly built view."""

from __future__ import annotations

from decimal import Decimal

from revagent.risk import AccountView, BookLevel, OpenTrade, RiskSettings, RiskState, evaluate
from revagent.risk.account import _aggregate, aggregates, share_aggregates
from tests.risk.builders import NOW, account, entry_order, position, stop_order

D = Decimal


def _view() -> AccountView:
    return account(equity="100000",
                   positions=(position("ETH", "2", "3000", stop="2900"), position("SOL", "-10", "150", stop="160"),
                              position("DOGE", "1000", "0.2")),
                   entries=(entry_order("SOL", "short", "5", "155", "40"),),
                   triggers=(stop_order("ETH", "sell", "2", "2900", oid=7),
                             stop_order("SOL", "buy", "10", "160", oid=8)))


def test_a_book_copy_shares_the_sums_and_gets_the_fresh_views_verdict() -> None:
    view = _view()
    rules = view.markets["BTC"].model_copy(update={"bids": (BookLevel(px=D(59990), sz=D(1)),),
                                                   "asks": (BookLevel(px=D(60010), sz=D("0.004")),
                                                            BookLevel(px=D(60050), sz=D(1)))})
    copy = share_aggregates(view, view.model_copy(update={"markets": {**view.markets, "BTC": rules}}))
    assert aggregates(copy) is aggregates(view)  # no second pass over positions and orders
    assert aggregates(copy) == _aggregate(copy)  # and they are the copy's own sums
    fresh = type(view).model_validate(copy.model_dump())
    intent = OpenTrade(market="BTC", side="long", origin="human", stop_px=D(59000), risk_usd=D(20))
    settings = RiskSettings(max_risk_per_trade_usd=D(50), max_portfolio_risk_usd=D(5000))
    state = RiskState()
    assert evaluate(intent, copy, settings, state, NOW) == evaluate(intent, fresh, settings, state, NOW)
