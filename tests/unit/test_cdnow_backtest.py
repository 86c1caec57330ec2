"""All of CDNOW's master file through the backtest: real histories, checked against
what the contract's rules say from the raw rows alone.

69,659 purchases of 23,570 customers (1997-01 to 1998-06). Every row must be
accepted, every customer's orders and net revenue must equal the file's, and
the timers must have moved every one-time buyer exactly as the default
playbook says by the last day of the data: within 60 days of the order a
first_time_buyer, from 60 days at_risk, from 120 days churned (in CDNOW all
of them bought in early 1997, so all are churned).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from harness.datasets import cdnow_events
from lifecycle.backtest import Backtest, Output
from lifecycle.playbook import default_playbook
from schemas.codec import dumps
from schemas.records import Stage
from streams.producer import partitioner


def test_the_master_file_through_the_backtest_follows_the_rules() -> None:
    events = cdnow_events("CDNOW_master.txt")
    assert len(events) == 69_659
    runner = Backtest(default_playbook(), partitioner(4))
    items = list(runner.run([dumps(e) for e in events]))
    assert all(isinstance(item, Output) for item in items), "a CDNOW row was rejected"

    orders: dict[str, list[datetime]] = defaultdict(list)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for e in events:
        orders[e["customer_id"]].append(datetime.fromisoformat(e["occurred_at"]))
        revenue[e["customer_id"]] += Decimal(e["total"])
    end = max(at for times in orders.values() for at in times)
    states = runner.states
    assert set(states) == set(orders)
    assert len(states) == 23_570
    for customer, times in orders.items():
        state = states[customer]
        assert (state.orders, state.revenue) == (len(times), revenue[customer]), customer
    one_time = {c: times[0] for c, times in orders.items() if len(times) == 1}
    want = {
        c: Stage.CHURNED
        if end - at >= timedelta(days=120)
        else Stage.AT_RISK
        if end - at >= timedelta(days=60)
        else Stage.FIRST_TIME_BUYER
        for c, at in one_time.items()
    }
    got = {c: states[c].stage for c in one_time}
    wrong = {c: (got[c], want[c]) for c in want if got[c] != want[c]}
    assert wrong == {}, list(wrong.items())[:5]
    assert len(one_time) > 10_000  # CDNOW's famous one-time buyers: the rule was exercised
