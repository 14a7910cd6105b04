"""Fairness maths, without a database."""

import pytest

from trustfabric.fairness import DeficitRoundRobin, fairness_gini, gini, max_min_shares


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
