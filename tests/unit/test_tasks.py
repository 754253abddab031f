"""platformkit.tasks: every service stop (redirect projector and click tasks, the shorten relay)
ends its tasks within a bound, even when a library swallows a cancellation."""

import asyncio
import logging
import os
import signal

import pytest
from platformkit.tasks import cancel_and_wait, run_until_signalled

from tests.conftest import wait_until_async

pytestmark = pytest.mark.unit
log = logging.getLogger("test-tasks")


class SwallowsFirstCancel:
    """Work that loses the first cancellation, as aiokafka's cleanup can."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancels = 0

    async def run(self) -> None:
        self.started.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancels += 1
                if self.cancels > 1:
                    raise


async def test_a_swallowed_cancel_is_repeated_until_the_task_ends() -> None:
    work = SwallowsFirstCancel()
    task = asyncio.create_task(work.run())
    await work.started.wait()
    left = await cancel_and_wait({task}, timeout=5, log=log, recancel_interval=0.01)
    assert left == set() and task.cancelled() and work.cancels == 2


async def test_a_task_that_never_ends_is_left_at_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def immovable() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(immovable(), name="immovable")
    await asyncio.sleep(0)
    left = await asyncio.wait_for(cancel_and_wait({task}, timeout=0.2, log=log, recancel_interval=0.05), 5)
    assert left == {task} and not task.done()
    assert "immovable" in caplog.text
    release.set()
    await task


async def test_failures_of_ended_tasks_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("broken sender")

    task = asyncio.create_task(fails(), name="sender")
    await asyncio.wait({task})
    assert await cancel_and_wait({task}, timeout=1, log=log) == set()
    assert "task sender had failed" in caplog.text and "broken sender" in caplog.text


async def test_a_stop_signal_ends_work_that_swallows_one_cancel() -> None:
    work = SwallowsFirstCancel()
    running = asyncio.create_task(run_until_signalled(work.run(), name="relay", stop_timeout=5, log=log))
    await work.started.wait()
    os.kill(os.getpid(), signal.SIGTERM)

    async def stopped() -> bool:
        return running.done()

    await wait_until_async(stopped, timeout=10, what="run_until_signalled to return")
    assert running.result() is None and work.cancels == 2
    # The handlers are removed again: SIGTERM has its default action back.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_work_that_fails_raises_its_error() -> None:
    async def fails() -> None:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError, match="gone"):
        await run_until_signalled(fails(), name="relay", stop_timeout=1, log=log)
