"""GET /health/: one entry per dependency, 503 naming the one that fails."""
import asyncio
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from users import cache

CHECK_TIMEOUT = 2.0


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _run(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:  # any failure of a dependency is a 503, never a 500
        return f"error: {type(exc).__name__}"
    return "ok"


async def health(request: HttpRequest) -> JsonResponse:
    names = ("database", "cache", "channel_layer")
    results = await asyncio.gather(
        _run(sync_to_async(_database_ping)), _run(cache.ping), _run(cache.ping_channel_layer)
    )
    checks = dict(zip(names, results))
    ok = all(result == "ok" for result in results)
    return JsonResponse({"status": "ok" if ok else "error", "checks": checks}, status=200 if ok else 503)
