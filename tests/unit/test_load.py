"""The view of the load (admission, shedding, the live Gini), without a database."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from trustfabric.domain.audit import iso, now_iso
from trustfabric.domain.events.records import JobEvent
from trustfabric.domain.fairness.load import GINI, RATE_WINDOW_S, LoadState
from trustfabric.errors import Unavailable


def test_admission_holds_each_tenant_to_what_it_is_served_within_the_queue_wait():
    state = LoadState(queue_wait_s=0.5, min_queued=40)
    for tenant, asked in (("a", 2000), ("b", 100)):
        for _ in range(asked):
            state.accepted(tenant)
    state.observe_depth({"a": 40})
    state.admit("a")  # 40 queued: one batch, a's while nobody else waits (none served yet)
    state.observe_depth({"a": 41})
    with pytest.raises(Unavailable):
        state.admit("a")
    state.observe_depth({"a": 41, "b": 20})
    state.admit("b")  # b's even part of a batch is 20
    state.admit("c")  # a newcomer holds nothing
    state.observe_depth({"a": 41, "b": 21})
    with pytest.raises(Unavailable):
        state.admit("b")
    assert state.overloaded()
    state.served(["a"] * 1000 + ["b"] * 100)  # measured: a 200 jobs/s, b 20 over the 5 s
    state.admit("a")  # 41 queued start within 0.5 s at 200 a second
    state.observe_depth({"a": 41, "b": 20})
    assert not state.overloaded()
    state.observe_depth({"a": 101, "b": 40})
    with pytest.raises(Unavailable):
        state.admit("a")  # the 101st would wait longer than 0.5 s
    # b asked 100 of the 1,100 served: less than its even part, so a stall that deepens
    # its queue is held against it only past twice its budget (10 in 0.5 s, at least 20)
    state.admit("b")
    state.observe_depth({"a": 101, "b": 41})
    with pytest.raises(Unavailable):
        state.admit("b")


def test_a_job_counts_against_the_queue_from_admission_until_it_is_not_queued():
    """Admitted jobs whose write has not returned are queued all the same (a burst must not
    all get in while the writes are on their way); a replay or a failed write queues none."""
    state = LoadState(queue_wait_s=0.9, min_queued=4)
    admitted = 0
    while admitted < 10:
        try:
            state.admit("a")
        except Unavailable:
            break
        state.queued("a")  # admitted; its write is on its way
        admitted += 1
    assert admitted == 5  # while no more than the floor were queued, though no write returned
    state.observe_depth({})  # a worker's count, without the jobs still arriving ...
    with pytest.raises(Unavailable):
        state.admit("a")  # ... has them all the same
    for _ in range(3):
        state.handed_over("a", created=False)  # replays: no job was queued
    for _ in range(2):
        state.handed_over("a")  # written: queued until a worker takes them
    state.admit("a")  # 2 queued, before any worker looked again
    state.observe_depth({"a": 2})  # the worker's count has them now
    state.admit("a")


def test_a_process_short_of_cpu_sheds_the_tenant_taking_more_than_its_share():
    state = LoadState(queue_wait_s=0.9, max_loop_lag_s=0.05)
    for _ in range(60):
        state.accepted("flood")
    for tenant in ("light1", "light2"):
        for _ in range(10):
            state.accepted(tenant)
    state.admit("flood")  # the loop keeps up: everyone is admitted
    state.loop_lag_s = 0.2
    with pytest.raises(Unavailable) as refused:
        state.admit("flood")  # 60 of the last 80 admissions: over its third
    assert refused.value.extensions["reason"] == "OVERLOADED"
    state.admit("light1")  # 10 of 80: under its third
    state.admit("newcomer")


def test_the_live_gini_measures_service_against_weighted_shares_and_owed_demand():
    state = LoadState(0.25)
    state.weights = {"gold": 3.0, "basic": 1.0}
    for _ in range(1000):
        state.accepted("gold")
        state.accepted("basic")
    for _ in range(100):  # refused for its own quota or permissions: not owed service
        state.refused("idle", "QUOTA_EXCEEDED")
        state.refused("idle", "FORBIDDEN")
    state.served(["gold"] * 300 + ["basic"] * 100)  # 3:1, as weighted
    assert GINI._value.get() == pytest.approx(0.0, abs=1e-9)
    state.refused("shed", "UNAVAILABLE")  # shed for load: owed, and not served
    assert state.gini() > 0.16


async def test_the_live_gini_moves_on_with_its_window_when_nothing_is_served():
    state = LoadState(0.25, window_s=0.2)
    state.accepted("a")
    state.refused("b", "UNAVAILABLE")
    state.served(["a"])
    assert GINI._value.get() > 0.16
    await asyncio.sleep(0.25)  # on purpose: the window passes with nothing served
    await state.tick(gini_every_s=0.0)
    assert GINI._value.get() == 0.0


def test_what_other_processes_accept_and_serve_is_part_of_this_ones_view_of_the_load():
    """An API process whose workers run elsewhere hears of their jobs through job events:
    their service sets its rate (what each tenant's queue is held to) and its Gini."""
    state, now = LoadState(0.25), now_iso()

    def heard(tenant: str, status: str, n: int, written: str = now, at: str = now) -> None:
        state.heard([JobEvent(id="e", at=at, tenant=tenant, job_id="j", status=status,
                              written=written)] * n)

    def ago(seconds: float) -> str:
        return iso(datetime.now(UTC) - timedelta(seconds=seconds))

    heard("a", "QUEUED", 100)
    heard("b", "QUEUED", 100)
    heard("a", "DONE", 100)
    heard("b", "RUNNING", 100)
    assert state.rate() == pytest.approx(100 / RATE_WINDOW_S)
    assert GINI._value.get() > 0.16  # b is owed as much, and was served nothing
    assert state.demanding() == {"a", "b"}
    heard("b", "DONE", 100)
    assert GINI._value.get() == pytest.approx(0.0, abs=1e-9)
    # a backlog read late (a stall, an outage of reads) is not service of the last seconds,
    # nor demand of the last minute
    heard("c", "DONE", 1000, written=ago(RATE_WINDOW_S + 1))
    heard("d", "QUEUED", 1000, written=ago(61))
    assert state.rate() == pytest.approx(200 / RATE_WINDOW_S)
    assert state.demanding() == {"a", "b"}
    # jobs sealed a while ago by a worker held up, and written now, are served now
    heard("e", "DONE", 100, at=ago(RATE_WINDOW_S + 10))
    assert state.rate() == pytest.approx(300 / RATE_WINDOW_S)
