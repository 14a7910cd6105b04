"""Background work of one process: named tasks that repeat, each with the same logging,
backoff and metrics, started and stopped with the app's lifespan."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Histogram

from trustfabric.domain.origin import ORIGIN
from trustfabric.errors import Unavailable

log = logging.getLogger(__name__)

RUNS = Counter("tf_background_runs_total", "Runs of a background task by outcome",
               ["task", "outcome"])
RUN_SECONDS = Histogram("tf_background_run_seconds", "Time one run of a background task took",
                        ["task"], buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120))

# A step returns the seconds until its next run, or None for the task's interval.
Step = Callable[[], Awaitable[float | None]]


class Background:
    """Every repeating task of the process goes through `every`: a failed run is logged
    once per failure (an outage as a warning, anything else with its traceback) and the
    next waits twice as long as the last, up to `max_backoff_s`, so a lasting fault is
    neither hot-looped nor logged ten times a second."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._on_stop: list[Callable[[], Awaitable[None]]] = []

    def every(self, name: str, interval_s: float, step: Step, *, max_backoff_s: float = 60.0,
              on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        if on_stop is not None:
            self._on_stop.append(on_stop)
        self._start(name, self._repeat(name, interval_s, step, max_backoff_s))

    def run(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """A task that runs once, or loops by itself (the proof worker's pipeline)."""

        async def once() -> None:
            try:
                await work()
                RUNS.labels(name, "ok").inc()
            except Exception:
                RUNS.labels(name, "failed").inc()
                log.exception("background task %s failed", name)

        self._start(name, once())

    def _start(self, name: str, work: Awaitable[None]) -> None:
        if name in self._tasks:
            raise ValueError(f"background task {name} is already running")

        async def labelled() -> None:
            ORIGIN.set("background")  # its statements are counted apart from requests'
            await work

        self._tasks[name] = asyncio.create_task(labelled(), name=name)

    @staticmethod
    async def _repeat(name: str, interval_s: float, step: Step, max_backoff_s: float) -> None:
        backoff = 0.0
        while True:
            started = time.perf_counter()
            try:
                delay = await step()
            except Exception as error:
                backoff = min(max(backoff * 2, interval_s, 0.1), max_backoff_s)
                RUNS.labels(name, "failed").inc()
                if isinstance(error, Unavailable):
                    log.warning("background task %s: database unavailable; retrying in %.1f s",
                                name, backoff)
                else:
                    log.exception("background task %s failed; retrying in %.1f s", name,
                                  backoff)
                delay = backoff
            else:
                backoff = 0.0
                RUNS.labels(name, "ok").inc()
            RUN_SECONDS.labels(name).observe(time.perf_counter() - started)
            await asyncio.sleep(interval_s if delay is None else delay)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        for stop in self._on_stop:
            await stop()
