"""Benchmark of the cached GET path, not part of the test suite.

    python -m tests.benchmark            # needs wrk (apt-get install wrk), PostgreSQL and Redis

Prints, from one run on this machine: requests/s and p50/p99 latency of a cached
GET /api/v1/users/{id}/ through one uvicorn worker, the same for a bare ASGI app returning the
same bytes (the ceiling), their ratio; and the invalidation delay across 4 workers.
"""
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sidus")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tests.servers import ROOT, free_port, wait_for_port  # noqa: E402
from users.models import User  # noqa: E402
from users.tokens import token_pair  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ROUNDS = int(os.environ.get("BENCH_INVALIDATION_ROUNDS", "100"))


def serve(app: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env={**os.environ, "WEB_CONCURRENCY": "1", **(env or {})},
    )
    wait_for_port(port, process=process)
    return process, f"http://127.0.0.1:{port}"


def wrk(url: str) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non_2xx is None, out
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%")}


def hit_path_vs_ceiling(user: User) -> None:
    worker, base = serve("sidus.asgi:application")
    try:
        url = f"{base}/api/v1/users/{user.pk}/"
        httpx.get(url)
        warm = httpx.get(url)
        assert warm.headers["x-cache"] == "L1", warm.headers
        headers = [[k, v] for k, v in warm.headers.items() if k not in ("date", "server")]
        hit = wrk(url)
        through_django = wrk(url + "?format=json")  # the same answer from L2, through Django
    finally:
        worker.terminate()
        worker.wait()
    bare, bare_base = serve(
        "tests.bare_asgi:app", {"BARE_ASGI_RESPONSE": json.dumps({"headers": headers, "body": warm.text})}
    )
    try:
        assert httpx.get(bare_base).content == warm.content
        ceiling = wrk(bare_base)
    finally:
        bare.terminate()
        bare.wait()
    print(f"cached GET, 1 uvicorn worker, wrk -t2 -c{CONNECTIONS} -d{DURATION}s")
    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    rows = (("sidus L1 hit", hit), ("bare ASGI (ceiling)", ceiling), ("L2 hit through Django", through_django))
    for name, row in rows:
        print(f"{name:24}{row['rps']:>10.0f}{row['p50']:>10.2f}{row['p99']:>10.2f}")
    print(f"ratio L1 hit/ceiling: {hit['rps'] / ceiling['rps']:.2f}, "
          f"through Django/ceiling: {through_django['rps'] / ceiling['rps']:.3f}")


async def invalidation_delays(user: User, workers: list[str], auth: dict[str, str]) -> list[float]:
    """Seconds from the PATCH's answer until each worker serves the new value (pollers run throughout)."""
    url = f"/api/v1/users/{user.pk}/"
    delays: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for round_ in range(ROUNDS):
            bio = f"bench round {round_} {time.time()}"
            for base in workers:  # warm: every worker serves from L1
                await client.get(base + url)
            seen: dict[str, float] = {}

            async def poll(base: str) -> None:
                while True:
                    response = await client.get(base + url)
                    if response.json()["bio"] == bio:
                        seen[base] = time.perf_counter()
                        return

            pollers = [asyncio.create_task(poll(base)) for base in workers]
            await client.patch(workers[round_ % len(workers)] + url, json={"bio": bio}, headers=auth)
            answered = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*pollers), 5)
            delays.extend(max(0.0, seen[base] - answered) for base in workers)
    return delays


def invalidation_across_workers(user: User, count: int = 4) -> None:
    servers = [serve("sidus.asgi:application") for _ in range(count)]
    try:
        auth = {"Authorization": f"Bearer {token_pair(user)['access']}"}
        delays = sorted(asyncio.run(invalidation_delays(user, [base for _, base in servers], auth)))
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(f"invalidation across {count} workers, {ROUNDS} updates, delay after the writer answered: "
          f"p50 {statistics.median(delays) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {delays[-1] * 1000:.2f} ms")


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="benchmark", defaults={"email": "benchmark@example.com"})
    User.objects.filter(pk=user.pk).update(deleted_at=None, is_active=True)
    hit_path_vs_ceiling(user)
    invalidation_across_workers(user)


if __name__ == "__main__":
    main()
