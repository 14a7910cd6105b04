"""The soak's offered load: a ramp's arrivals, step by step, and what each step served."""

import argparse
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bench.common import database_compactions, database_pauses
from bench.soak import (
    Done,
    Rates,
    Run,
    collector_figures,
    compaction_figures,
    ms_per_s,
    steps,
    stretches,
)


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
    service = [{"t": t, "db_ms_per_query": 4.0 if t < 300 else 5.0,
                "db_gc_ms_per_s": 6.0 if t < 590 else 9.0,
                "db_compaction_ms_per_s": 0.0 if t < 300 else 40.0} for t in range(0, 900, 10)]
    found = stretches({"timeline": timeline, "service_timeline": service})
    assert found["served_per_stretch"] == [550, 550, 530] and found["least_stretch"] == 530
    assert (found["db_ms_per_query_first"], found["db_ms_per_query_last"]) == (4.0, 5.0)
    assert found["db_change"] == 0.25
    assert (found["db_gc_ms_per_s_first"], found["db_gc_ms_per_s_last"]) == (6.0, 9.0)
    assert (found["db_compaction_ms_per_s_first"],
            found["db_compaction_ms_per_s_last"]) == (0.0, 40.0)
    # a database elsewhere: its CPU is not known, and not made up
    assert found["db_cpu_ms_per_job_first"] is None and found["db_cpu_change"] is None


def test_the_databases_cpu_a_job_is_read_over_the_first_and_last_stretch():
    """The same cores serving fewer jobs: more CPU a job."""
    timeline = [{"t": t, "jobs_per_s": 500 if t < 590 else 400} for t in range(0, 900, 10)]
    service = [{"t": t, "db_ms_per_query": 4.0, "db_cores": 0.2} for t in range(0, 900, 10)]
    found = stretches({"timeline": timeline, "service_timeline": service})
    assert (found["db_cpu_ms_per_job_first"], found["db_cpu_ms_per_job_last"],
            found["db_cpu_change"]) == (0.4, 0.5, 0.25)


# as the embedded database's JVM writes them (-Xlog:gc with time and uptime)
GC_LOG = """[2026-12-07T14:42:59.653+0000][0.004s] Using Parallel
[2026-12-07T14:42:59.904+0000][0.255s] GC(0) Pause Full (System.gc()) 13M->3M(362M) 8.554ms
[2026-12-07T14:43:10.000+0000][10.35s] GC(1) Pause Young (Allocation Failure) 745M->446M(750M) 62.913ms
[2026-12-07T14:43:20.000+0000][20.35s] GC(2) Pause Young (Allocation Failure) 748M->452M(814M) 40.0ms
"""


def test_the_database_collectors_pauses_are_read_within_the_run(tmp_path):
    (tmp_path / "gc.log.0").write_text(GC_LOG)
    begin = 1796654590.0  # 2026-12-07T14:43:10Z
    pauses = database_pauses(tmp_path, begin, begin + 60)
    assert [(p.kind, p.ms) for p in pauses] == [("Young", 62.913), ("Young", 40.0)]
    assert pauses[0].at == begin
    figures = collector_figures(pauses, 60)
    assert figures == {"pauses": 2, "full": 0, "paused_ms_per_s": 1.7, "longest_ms": 62.9,
                       "mean_ms": 51.5}


# as ArcadeDB writes them (log/arcadedb.log.N), in the JVM's local time; the lock file too
ARCADEDB_LOG = """2026-12-07 20:29:54.409 INFO  [SecurityGroupFileRepository$1] Server groups configuration changed, reloading it...
2026-12-07 20:36:50.000 INFO  [LSMTreeIndex] Index 'PsiJob_0_42041133938871' fully compacted in 900ms (keys=5 values=5 droppedKeys=0 droppedValues=0 mergedSeries=10 newFile=PsiJob_0_1(150) threadId=64)
2026-12-07 20:37:05.264 INFO  [LSMTreeIndex] Full compaction of index 'AuditEvent_0_42041354134715' (series=10 mutablePagesToCompact=10 threadId=64)...
2026-12-07 20:37:06.998 INFO  [LSMTreeIndex] Index 'AuditEvent_0_42041354134715' fully compacted in 1735ms (keys=362361 values=362365 droppedKeys=0 droppedValues=0 mergedSeries=10 newFile=AuditEvent_0_42475152455303(189) threadId=64)
2026-12-07 20:40:11.083 INFO  [LSMTreeIndex] Index 'PsiQueueEntry_0_42041187684177' fully compacted in 570ms (keys=123 values=123 droppedKeys=270634 droppedValues=541268 mergedSeries=10 newFile=PsiQueueEntry_0_42660401462716(214) threadId=64)
2026-12-07 20:43:06.278 INFO  [LSMTreeIndex] Index 'AuditEvent_0_42041354134715' fully compacted in 5062ms (keys=694551 values=694551 droppedKeys=0 droppedValues=0 mergedSeries=10 newFile=AuditEvent_0_42831105014668(236) threadId=64)
"""


@pytest.fixture
def new_york(monkeypatch):
    """A zone other than the host's (often UTC): times logged without one are read in it."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_database_full_compactions_are_read_within_the_run(tmp_path, new_york):
    (tmp_path / "arcadedb.log.0").write_text(ARCADEDB_LOG)
    (tmp_path / "arcadedb.log.0.lck").write_text(ARCADEDB_LOG)  # read once, not twice
    begin = datetime(2026, 12, 7, 20, 37, tzinfo=ZoneInfo("America/New_York")).timestamp()
    found = database_compactions(tmp_path, begin, begin + 300)
    assert [(c.index, c.ms, c.keys) for c in found] == [
        ("AuditEvent_0_42041354134715", 1735.0, 362361),
        ("PsiQueueEntry_0_42041187684177", 570.0, 123)]
    assert found[0].at == pytest.approx(begin + 6.998)
    assert compaction_figures(found, 300) == {
        "full": 2, "by_type": {"AuditEvent": 1, "PsiQueueEntry": 1}, "ms_per_s": 7.7,
        "longest_ms": 1735.0, "most_keys": 362361}
    # counted in the window it ended in (6.998 s in), not the one it began in (5.263 s)
    assert ms_per_s(found, begin, 6, 6) == 0.0 and ms_per_s(found, begin, 12, 6) == 289.2
