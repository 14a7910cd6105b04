"""The soak's offered load: a ramp's arrivals, step by step, and what each step served."""

import argparse

import pytest

from bench.soak import Done, Rates, Run, steps, stretches


def test_a_ramp_offers_each_rate_for_its_step():
    ramp = Rates.ramp("300:700:50", 60)
    assert ramp.rates == (300, 350, 400, 450, 500, 550, 600, 650, 700)
    assert ramp.seconds == 540
    assert ramp.due(30) == 9_000 and ramp.due(60) == 18_000 and ramp.due(90) == 28_500
    assert ramp.due(10_000) == 60 * sum(ramp.rates)  # nothing after the last step
    assert Rates((550,), 600).due(600) == 330_000


@pytest.mark.parametrize("text", ["700:300:50", "300:700", "0:100:10", "a:b:c", "300:700:0"])
def test_a_ramp_that_does_not_rise_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        Rates.ramp(text, 60)


def test_each_step_reports_what_it_offered_served_and_refused():
    run = Run()
    run.arrivals = [(100 + t / 10, "a") for t in range(200)]  # 10/s over 20 s
    run.refused_at = [105.0, 115.0, 116.0]
    # served in the first step: 3 sent in it; in the second: 1 sent in the first, 1 in it
    run.done = [Done(101, "a", 0.5, "j1", 0), Done(102, "a", 1.0, "j2", 0),
                Done(109, "a", 0.2, "j3", 0), Done(111, "a", 2.0, "j4", 0),
                Done(119, "a", 0.1, "j5", 0)]
    first, second = steps(run, 100.0, Rates((10, 10), 10))
    assert (first["offered_per_s"], first["served_per_s"], first["refused_per_s"]) == (10, 0.3, 0.1)
    assert (second["offered_per_s"], second["served_per_s"], second["refused_per_s"]) == (10, 0.2, 0.2)
    assert second["p95_ms"] == 100.0  # j4 was sent in the first step


def test_a_long_run_is_read_in_five_minute_stretches():
    timeline = [{"t": t, "jobs_per_s": 550 if t < 600 else 530} for t in range(0, 900, 10)]
    service = [{"t": t, "db_ms_per_query": 4.0 if t < 300 else 5.0} for t in range(0, 900, 10)]
    found = stretches({"timeline": timeline, "service_timeline": service})
    assert found["served_per_stretch"] == [550, 550, 530] and found["least_stretch"] == 530
    assert (found["db_ms_per_query_first"], found["db_ms_per_query_last"]) == (4.0, 5.0)
    assert found["db_change"] == 0.25
