"""Independent calls of one run, made at once: a run waits for its slowest call, not for their sum.

Each call runs on a thread of its own; the calls of one endpoint share its runspace pool, which runs
as many at once as its transport allows (collectors.sources.wsman_client), the others wait for a lane.
Results come back in the order of the calls, and so does the failure: when several calls fail, the
first failing call's exception is raised, as if they had run one after another (after every call
ended, so no call outlives the run that made it).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def run_together(*calls: Callable[[], T]) -> list[T]:
    if len(calls) <= 1:
        return [call() for call in calls]
    results: list[Any] = [None] * len(calls)
    failures: list[BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failures[index] = exc

    threads = [threading.Thread(target=run, args=(i, call), daemon=True,
                                name=f"{threading.current_thread().name}#{i}") for i, call in enumerate(calls[1:], 1)]
    for thread in threads:
        thread.start()
    run(0, calls[0])  # the first on the calling thread
    for thread in threads:
        thread.join()
    for failure in failures:
        if failure is not None:
            raise failure
    return results
