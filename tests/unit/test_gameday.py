"""The game day's pure parts: the fault proxy switched on and off, and the alert rules
evaluated over scrapes as Prometheus would."""

import asyncio
import json
import time

import pytest

from bench.alerts import Episode, Scrapes, Unsupported, alert_episodes, evaluate, load_rules, parse
from bench.faults import FaultProxy, Faults, serve_control, set_faults
from tests.helpers import RULES


async def echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def round_trip(port: int, payload: bytes = b"ping") -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    begin = time.monotonic()
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.readexactly(len(payload)), 2)
    elapsed = time.monotonic() - begin
    writer.close()
    return data, elapsed


async def test_the_proxy_forwards_delays_partitions_and_resets_as_switched():
    server, upstream = await echo_server()
    proxy = FaultProxy("127.0.0.1", upstream, seed=1)
    port = await proxy.start()
    control = await serve_control(proxy, "127.0.0.1", 0)
    control_port = control.sockets[0].getsockname()[1]
    try:
        data, quick = await round_trip(port)
        assert data == b"ping" and quick < 0.05

        await set_faults(control_port, Faults(latency_ms=60))
        data, slow = await round_trip(port)
        assert data == b"ping" and slow >= 0.1  # 60 ms each way

        # a partition holds a connection's bytes until it ends, then they flow
        await set_faults(control_port, Faults(partition=True))
        held = asyncio.create_task(round_trip(port))
        await asyncio.sleep(0.3)
        assert not held.done()
        await set_faults(control_port, Faults())
        data, waited = await held
        assert data == b"ping" and waited >= 0.25

        # every live connection reset, and new ones refused
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        answer = await set_faults(control_port, Faults(reset_per_s=1000, refuse=1.0))
        await asyncio.sleep(0.5)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            writer.write(b"y")
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(1), 2)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await round_trip(port)
        stats = (await set_faults(control_port, None))["stats"]
        assert stats["resets"] >= 1 and stats["refused"] >= 1

        # switched off, it forwards again
        answer = await set_faults(control_port, Faults())
        assert answer["faults"]["refuse"] == 0
        assert (await round_trip(port))[0] == b"ping"
    finally:
        control.close()
        await proxy.close()
        server.close()


async def test_the_control_port_refuses_unknown_faults():
    proxy = FaultProxy("127.0.0.1", 9, seed=1)
    control = await serve_control(proxy, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", control.sockets[0].getsockname()[1])
        writer.write(b'{"latency": 5}\n')
        answer = json.loads(await reader.readline())
        writer.close()
        assert not answer["ok"] and "unknown faults" in answer["error"]
        assert proxy.faults == Faults()
    finally:
        control.close()


def queue(depth_a: float, depth_b: float) -> str:
    return (f'tf_psi_queue_depth{{tenant="a"}} {depth_a}\n'
            f'tf_psi_queue_depth{{tenant="b"}} {depth_b}\n')


def test_the_service_rules_are_all_understood_and_fire_after_their_for():
    rules = {r.name: r for r in load_rules(RULES)}
    assert all(r.tree is not None for r in rules.values()), [r.problem for r in rules.values()]
    scrapes = Scrapes()
    for t in range(0, 400, 10):
        deep = 100 <= t < 300
        # two processes report the same shared queue: each tenant's counted once
        scrapes.add("api", t, queue(500 if deep else 10, 500 if deep else 10))
        scrapes.add("worker0", t, queue(500 if deep else 10, 500 if deep else 10))
    [episode] = alert_episodes([rules["PsiQueueBacklog"]], scrapes)
    assert (episode.pending, episode.firing, episode.resolved) == (100, 220, 300)
    assert episode.peak == 1000


def test_an_alert_that_holds_shorter_than_its_for_never_fires():
    [rule] = [r for r in load_rules(RULES) if r.name == "PsiFairnessGiniHigh"]
    scrapes = Scrapes()
    for t in range(0, 600, 5):
        gini = 0.3 if 100 <= t < 200 else 0.05
        scrapes.add("api", t, f"tf_psi_fairness_gini {gini}\n")
    [episode] = alert_episodes([rule], scrapes)
    assert episode.firing is None and (episode.pending, episode.resolved) == (100, 200)


def test_rates_up_and_matchers():
    scrapes = Scrapes()
    for t, count in ((0, 0), (10, 50), (20, 100), (30, 10)):  # a reset at 30
        scrapes.add("api", t, f'tf_graph_query_errors_total{{query="a"}} {count}\n'
                              f'tf_graph_query_errors_total{{query="b"}} 0\n')
    scrapes.add("worker0", 30, None)
    rate = evaluate(parse('sum(rate(tf_graph_query_errors_total{query=~"a|c"}[1m])) > 1'),
                    scrapes, 30)
    assert rate == {(): pytest.approx(110 / 30)}
    assert evaluate(parse('rate(tf_graph_query_errors_total{query!="a"}[1m]) > 0'),
                    scrapes, 30) == {}
    assert list(evaluate(parse("up == 0"), scrapes, 30).values()) == [0.0]
    with pytest.raises(Unsupported):
        parse("histogram_quantile(0.95, tf_x)")


def test_a_restart_between_scrapes_is_counted_by_changes():
    [rule] = [r for r in load_rules(RULES) if r.name == "TrustFabricProcessRestarted"]
    scrapes = Scrapes()
    for t in range(0, 900, 5):
        started = 100.0 if t < 200 else 205.0  # killed at 200, answering again at 215
        scrapes.add("worker0", t, None if 200 <= t < 215 else
                    f"process_start_time_seconds {started}\n")
        scrapes.add("api", t, "process_start_time_seconds 50.0\n")
    [episode] = alert_episodes([rule], scrapes)
    assert episode.alert == "TrustFabricProcessRestarted"  # the api never restarted
    assert (episode.pending, episode.firing) == (215, 215)  # `for: 0s`
    assert episode.resolved == 195 + 600  # the last scrape before the kill left the range


def test_faults_are_credited_with_their_first_alert_and_timed_to_recovery():
    from bench.gameday import Fault, attribute, recoveries

    faults = [Fault("flood", "quota", 60, 120), Fault("partition", "network", 200, 215)]
    episodes = [Episode("A", "page", pending=70, firing=100),
                Episode("B", "page", pending=205, firing=None)]
    credited = attribute(faults, episodes, end=300)
    assert credited["flood"] == {"alert": "A", "pending_s": 10, "firing_s": 40, "ongoing": []}
    assert credited["partition"] == {"alert": "B", "pending_s": 5, "firing_s": None,
                                     "ongoing": ["A"]}  # never resolved

    def window(t: float, ok: bool) -> dict:
        return {"t": t, "offered_base": 20, "served_base": 20 if ok else 2, "errors": 0,
                "p95_ms": 200}

    points = [window(t, ok=not 200 <= t < 230) for t in range(0, 300, 5)]
    found = recoveries(faults, points)
    assert found["flood"] == {"hurt": False, "recovered_s": 0, "followed": False}
    assert found["partition"] == {"hurt": True, "recovered_s": 15, "followed": False}
    # a fault the next one follows at once has no recovery of its own
    back_to_back = [faults[0], Fault("next", "quota", 120, 130)]
    assert recoveries(back_to_back, points)["flood"]["followed"]
