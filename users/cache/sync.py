"""`run_sync`: the one (async) implementation of a cache call, from sync code."""
import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from users.cache.broadcast import broadcaster


def run_sync(function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run the one (async) implementation of a cache call from sync code (DRF's authentication,
    on_commit callbacks, the admin, the shell, Celery), and return its result.

    In a worker it runs on the worker's own event loop, whose Redis clients are warm, while this
    thread waits (one hop back, as `async_to_sync` makes); elsewhere on an event loop this process
    keeps for the purpose in a thread of its own.
    """
    loop = broadcaster.loop or _own_loop.get()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("run_sync() would wait for its own event loop: await the function instead")
    return asyncio.run_coroutine_threadsafe(function(*args), loop).result()


class _OwnLoop:
    """An event loop in a daemon thread, for the sync callers of a process without a worker loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # also after a fork
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="user-cache-sync-calls", daemon=True).start()
            return self._loop


_own_loop = _OwnLoop()
