"""GET /health/: one entry per dependency, 503 naming the one that fails."""
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from users import cache
from users.events.relay import backlog

CHECK_TIMEOUT = 2.0


def _database_ping() -> int:
    """SELECT 1, and (in the same thread hop) the count of events not yet published."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return backlog()


async def _run(check: Callable[[], Awaitable[Any]], found: dict[str, Any] | None = None) -> str:
    try:
        result = await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:  # any failure of a dependency is a 503, never a 500
        return f"error: {type(exc).__name__}"
    if found is not None:
        found["result"] = result
    return "ok"


async def health(request: HttpRequest) -> JsonResponse:
    names = ("database", "cache", "channel_layer")
    database: dict[str, Any] = {}
    results = await asyncio.gather(
        _run(sync_to_async(_database_ping), database), _run(cache.ping), _run(cache.ping_channel_layer)
    )
    checks = dict(zip(names, results))
    ok = all(result == "ok" for result in results)
    # Events the broker has not confirmed yet: a count to watch, not a failure (they are kept).
    events = {"backlog": database.get("result")}
    return JsonResponse({"status": "ok" if ok else "error", "checks": checks, "events": events},
                        status=200 if ok else 503)
