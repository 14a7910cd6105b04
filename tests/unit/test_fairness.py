"""Fairness maths, without a database."""

import pytest

from trustfabric.domain.fairness.shares import (
    DeficitRoundRobin,
    fairness_gini,
    gini,
    max_min_shares,
)


def test_max_min_shares_fill_small_demands_then_split_the_rest_by_weight():
    shares = max_min_shares({"a": 10, "b": 100, "c": 100}, {"a": 1, "b": 1, "c": 2}, 130)
    assert shares == pytest.approx({"a": 10, "b": 40, "c": 80})
    assert max_min_shares({"a": 5, "b": 5}, {}, 100) == {"a": 5, "b": 5}  # all satisfied


def test_gini_bounds():
    assert gini([1, 1, 1, 1]) == 0
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([]) == 0


def test_fairness_gini_is_zero_when_everyone_gets_its_share_and_grows_with_starvation():
    demand = {"flood": 1000, "light1": 50, "light2": 50}
    fair = {"flood": 400, "light1": 50, "light2": 50}
    assert fairness_gini(fair, demand, {}) == pytest.approx(0)
    starved = {"flood": 490, "light1": 5, "light2": 5}
    assert fairness_gini(starved, demand, {}) > 0.4


def test_drr_splits_a_batch_by_weight_and_never_beyond_backlog():
    drr = DeficitRoundRobin()
    allocation = drr.allocate({"flood": 500, "light": 3, "heavy": 100},
                              {"flood": 1, "light": 1, "heavy": 2}, 64)
    assert sum(allocation.values()) == 64
    assert allocation["light"] == 3
    assert allocation["heavy"] == pytest.approx(2 * allocation["flood"], abs=2)
    # over many rounds with equal weights, two backlogged tenants get equal service
    drr, served = DeficitRoundRobin(), {"a": 0, "b": 0}
    for _ in range(100):
        for tenant, n in drr.allocate({"a": 10_000, "b": 10_000}, {}, 7).items():
            served[tenant] += n
    assert abs(served["a"] - served["b"]) <= 1


def test_drr_banks_no_credit_for_a_queue_that_runs_out():
    """A weight-2 tenant trickling one job a batch must not save up what it did not use,
    and then starve the other when it floods."""
    drr = DeficitRoundRobin()
    for _ in range(1000):
        drr.allocate({"a": 1, "b": 10_000}, {"a": 2, "b": 1}, 12)
    served = {"a": 0, "b": 0}
    for _ in range(50):
        for tenant, n in drr.allocate({"a": 10_000, "b": 10_000}, {"a": 2, "b": 1},
                                      12).items():
            served[tenant] += n
    assert served["b"] == pytest.approx(200, abs=12)  # a third of 600


@pytest.mark.timeout(5)  # a million empty rounds a job, as before, took most of a minute
def test_drr_splits_by_tiny_weights_in_as_few_rounds_as_any():
    allocation = DeficitRoundRobin().allocate({"a": 64, "b": 64}, {"a": 2e-6, "b": 1e-6}, 60)
    assert allocation == {"a": 40, "b": 20}


