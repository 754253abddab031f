"""Stopping asyncio tasks within a bound, and running a process's work until a stop signal.

One cancel is not always enough to stop a task that uses a Kafka client: aiokafka awaits its
own internal tasks while cleaning up and suppresses their CancelledError, so a cancellation
that lands there is swallowed and the task goes on (seen with the redirect's links projector).
Every stop in the services therefore goes through `cancel_and_wait`, which cancels again while
the task runs and never waits past its bound.
"""

import asyncio
import logging
import signal
from collections.abc import Coroutine, Iterable
from typing import Any

RECANCEL_INTERVAL_S = 1.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def cancel_and_wait(
    tasks: Iterable["asyncio.Task[Any]"],
    *,
    timeout: float,
    log: logging.Logger,
    recancel_interval: float = RECANCEL_INTERVAL_S,
) -> "set[asyncio.Task[Any]]":
    """Cancel `tasks` (again every `recancel_interval` while one runs) and wait at most `timeout`
    seconds for them to end. Failures of ended tasks are logged; the tasks still running at the
    bound are logged and returned (the caller goes on without them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    ended = {t for t in tasks if t.done()}
    running = {t for t in tasks if not t.done()}
    while running:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        for task in running:
            task.cancel()
        done, running = await asyncio.wait(running, timeout=min(recancel_interval, remaining))
        ended |= done
    for task in ended:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s had failed", task.get_name(), exc_info=task.exception())
    if running:
        log.error("tasks still running %.1f s after cancel: %s", timeout, sorted(t.get_name() for t in running))
    return running


async def run_until_signalled(
    work: Coroutine[Any, Any, None], *, name: str, stop_timeout: float, log: logging.Logger
) -> None:
    """Run `work` as a task until it returns, fails (the error goes on) or SIGTERM/SIGINT comes;
    on a signal, stop it with `cancel_and_wait` and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    working = asyncio.create_task(work, name=name)
    signalled = asyncio.create_task(stop.wait(), name=f"{name}-stop-signal")
    try:
        await asyncio.wait({working, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if working.done():
            working.result()  # returned, or its error goes on
            return
        log.info("stop signal received; stopping %s", name)
        await cancel_and_wait({working}, timeout=stop_timeout, log=log)
    finally:
        signalled.cancel()
        if not working.done():  # run_until_signalled itself was cancelled
            working.cancel()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
