"""`run_sync`: the one (async) implementation of a cache call, from sync code."""
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from users.runtime import current


def run_sync(function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run the one (async) implementation of a cache call from sync code (DRF's authentication,
    on_commit callbacks, the admin, the shell, Celery), and return its result.

    In a worker it runs on the worker's own event loop, whose Redis clients are warm, while this
    thread waits (one hop back, as `async_to_sync` makes); elsewhere on an event loop this process
    keeps for the purpose in a thread of its own.
    """
    loop = current().sync_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("run_sync() would wait for its own event loop: await the function instead")
    return asyncio.run_coroutine_threadsafe(function(*args), loop).result()
