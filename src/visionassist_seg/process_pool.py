"""Running tasks in worker processes that die with their parent and leave Ctrl-C to it.

The one process pool of vaseg (precompute's shards, validate's scans). Workers are
started with ``spawn`` (clean: no inherited threads or open file handles), exit as soon
as the parent dies however it dies (``kill -9`` included), and ignore Ctrl-C: the parent
handles it by terminating them at once, so an interrupt prints one line, not a
traceback per worker.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_SECONDS = 1.0
RESULT_POLL_SECONDS = 0.2  # how often `on_tick` runs while no task finishes


def run_in_processes(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    on_result: Callable[[Any], None],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Call ``function(task)`` for every task in up to ``workers`` processes, passing each result to ``on_result``.

    Tasks are submitted in the given order; results arrive in completion order.
    ``initializer(*initargs)`` runs once in each worker; ``on_tick`` runs in this process
    at least every `RESULT_POLL_SECONDS` (to drain a progress queue). On any error or
    interrupt the workers are stopped at once and the error is raised here.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker, initargs=(os.getpid(), initializer, initargs),
    )  # fmt: skip
    try:
        with sigint_ignored():  # workers spawned now start with Ctrl-C ignored, before their initializer runs
            pending = {pool.submit(function, task) for task in tasks}
        while pending:
            finished, pending = wait(pending, timeout=RESULT_POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in finished:
                on_result(future.result())
            if on_tick:
                on_tick()
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown()


def _start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Worker start-up: die with the parent, leave Ctrl-C to it, then the caller's initializer."""
    exit_with_parent(parent_pid)
    # The parent owns Ctrl-C: it stops the workers itself, so they never print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


def exit_with_parent(parent_pid: int) -> None:
    """Make this process exit as soon as process ``parent_pid`` (its parent) dies, however it dies.

    Linux: the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``).
    Everywhere: a daemon thread polls `os.getppid`, which changes when the parent dies
    and the process is adopted. Either way a ``kill -9`` of the parent leaves no worker
    (and so no multiprocessing resource tracker, which exits with its last client).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the polling thread below still covers it
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="vaseg-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)  # no cleanup: the parent that would collect this worker's results is gone


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT inside the block (main thread only: elsewhere Python cannot change handlers).

    A process started meanwhile inherits the ignored disposition across exec, and Python
    then installs no KeyboardInterrupt handler in it at all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_workers(pool) -> None:  # type: ignore[no-untyped-def]  # pool: ProcessPoolExecutor
    """Cancel queued tasks and terminate running workers now, instead of waiting for their tasks."""
    # ProcessPoolExecutor has no public way to stop running workers before Python 3.14;
    # the list is taken first because shutdown lets the pool's manager thread clear it.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
