"""The call workers' hand-over: a turn runs off the event loop, and its result, its error or
the request's cancellation reach the right place without losing a worker."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from ivr.web.workers import CALL_WORKERS, on_call_worker


def test_a_turn_runs_on_a_call_thread_and_its_result_comes_back() -> None:
    async def main() -> tuple[str, str]:
        loop_thread = threading.current_thread().name
        name = await on_call_worker(lambda: threading.current_thread().name)
        return loop_thread, name

    loop_thread, worker = asyncio.run(main())
    assert worker.startswith("call_") and worker != loop_thread


def test_an_error_reaches_the_request_and_the_worker_goes_on() -> None:
    def fail(word: str) -> None:
        raise LookupError(word)

    async def main() -> int:
        for _ in range(CALL_WORKERS * 2):  # more failures than there are threads
            with pytest.raises(LookupError, match="gone"):
                await on_call_worker(fail, "gone")
        return await on_call_worker(sum, [1, 2, 3])

    assert asyncio.run(main()) == 6


def test_a_cancelled_request_lets_its_turn_finish_and_frees_the_thread() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        finished.set()
        return "done"

    async def main() -> list[int]:
        task = asyncio.ensure_future(on_call_worker(slow))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.to_thread(finished.wait, 5)
        # every worker still takes turns, concurrently
        return await asyncio.gather(*(on_call_worker(abs, -n) for n in range(CALL_WORKERS * 3)))

    assert asyncio.run(main()) == list(range(CALL_WORKERS * 3))
    assert finished.is_set()


def test_turns_run_side_by_side_up_to_the_pool_size() -> None:
    barrier = threading.Barrier(CALL_WORKERS, timeout=5)

    async def main() -> list[int]:
        return await asyncio.gather(*(on_call_worker(barrier.wait) for _ in range(CALL_WORKERS)))

    assert sorted(asyncio.run(main())) == list(range(CALL_WORKERS))


def test_a_forked_child_starts_workers_of_its_own() -> None:
    """A process forked after turns ran (a test runner, a pre-fork server) still gets its
    turns done: its parent's threads are not there to take them."""

    async def start_every_worker() -> None:
        for n in range(CALL_WORKERS):
            await on_call_worker(abs, -n)

    asyncio.run(start_every_worker())  # the parent has all its threads
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        try:
            code = 0 if asyncio.run(asyncio.wait_for(on_call_worker(abs, -7), 5)) == 7 else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
