"""Both cache tiers, their invalidation, the listener and the ASGI hit path, in one process.

Real Redis and PostgreSQL; the multi-worker behaviour is in test_workers.py.
"""
import asyncio
import logging
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from rest_framework.test import APIClient

from tests.support import PASSWORD, asgi_get, bearer, redis_keys, wait_for
from users import accounts, cache
from users.api.views import UserViewSet
from users.cache import batches, shared, user_cache_key
from users.cache.answers import CachedResponse, encode
from users.cache.broadcast import send_to_group
from users.cache.connection import MasterCheck
from users.cache.keys import INVALIDATION_COUNT
from users.cache.unsent import READ
from users.models import User
from users.runtime import current

# --- L2 and X-Cache (through the ASGI application; L1 is off without the listener) ----------------


@pytest.mark.django_db
def test_get_is_miss_then_l2_and_l2_holds_only_the_public_fields(user):
    assert redis_keys() == set()

    first = asgi_get(f"/api/v1/users/{user.pk}/")
    second = asgi_get(f"/api/v1/users/{user.pk}/")

    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "L2")
    assert first.content == second.content
    assert {k: v for k, v in first.headers.items() if k != "x-cache"} == {
        k: v for k, v in second.headers.items() if k != "x-cache"
    }
    stored = redis.Redis.from_url(settings.REDIS_URL).get(user_cache_key(user.pk))
    assert stored.endswith(b"\r\n\r\n" + first.content)
    assert user.email.encode() not in stored and b"password" not in stored and b"md5$" not in stored


@pytest.mark.django_db
def test_django_knows_no_cache_and_keeps_nothing(user):
    client = APIClient()
    assert client.get(f"/api/v1/users/{user.pk}/").status_code == 200
    assert redis_keys() == set()  # only the edge stores, and only Django's exact answer
    asgi_get(f"/api/v1/users/{user.pk}/")
    html = client.get(f"/api/v1/users/{user.pk}/", HTTP_ACCEPT="text/html")
    assert "X-Cache" not in html and user.username in html.content.decode()  # read from PostgreSQL


@pytest.mark.django_db
def test_unknown_user_is_not_cached():
    assert asgi_get("/api/v1/users/424242/").status_code == 404
    assert redis_keys() == set()


@pytest.mark.django_db
def test_patch_clears_l2_after_commit(user, django_capture_on_commit_callbacks):
    asgi_get(f"/api/v1/users/{user.pk}/")
    with django_capture_on_commit_callbacks(execute=True):
        APIClient().patch(f"/api/v1/users/{user.pk}/", {"bio": "new"}, **bearer(user))

    after = asgi_get(f"/api/v1/users/{user.pk}/")
    assert after.headers["X-Cache"] == "MISS"
    assert after.json()["bio"] == "new"


@pytest.mark.django_db
def test_shell_save_and_delete_clear_l2(user, django_capture_on_commit_callbacks):
    asgi_get(f"/api/v1/users/{user.pk}/")
    with django_capture_on_commit_callbacks(execute=True):
        user.first_name = "Shell"
        user.save()
    assert asgi_get(f"/api/v1/users/{user.pk}/").json()["first_name"] == "Shell"

    with django_capture_on_commit_callbacks(execute=True):
        accounts.user_soft_delete(user=user)
    assert asgi_get(f"/api/v1/users/{user.pk}/").status_code == 404

    asgi_get(f"/api/v1/users/{user.pk}/")
    pk = user.pk
    with django_capture_on_commit_callbacks(execute=True):
        User.objects.filter(pk=pk).update(deleted_at=None, is_active=True)  # no signal...
        cache.invalidate_users([pk])  # ...so bulk writers invalidate explicitly
        user.delete()
    assert asgi_get(f"/api/v1/users/{pk}/").status_code == 404


@pytest.mark.django_db
def test_rolled_back_change_invalidates_nothing(user, django_capture_on_commit_callbacks):
    asgi_get(f"/api/v1/users/{user.pk}/")
    with django_capture_on_commit_callbacks() as callbacks:
        pass
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        user.bio = "never committed"
        user.save()
        raise RuntimeError
    assert callbacks == []
    assert user_cache_key(user.pk).encode() in redis_keys()


@pytest.mark.django_db
def test_operator_clear_drops_every_l2_entry(make_user):
    users = [make_user() for _ in range(3)]
    for u in users:
        asgi_get(f"/api/v1/users/{u.pk}/")
    assert cache.clear_all_users() == 3
    assert all(asgi_get(f"/api/v1/users/{u.pk}/").headers["X-Cache"] == "MISS" for u in users)


# --- L2 reads coalesced ---------------------------------------------------------------------------


async def mget_calls() -> int:
    stats = await cache.redis_client().info("commandstats")
    return stats.get("cmdstat_mget", {}).get("calls", 0)


async def stored_answers(user_ids: range) -> dict[int, CachedResponse]:
    answers = {}
    for user_id in user_ids:
        answers[user_id] = CachedResponse.of(200, [(b"ETag", b'"%d"' % user_id)], b'{"id": %d}' % user_id, False)
        _, generation = await shared.read_answer(user_id)
        await shared.store_answer(user_id, answers[user_id], generation)
    return answers


@pytest.mark.parametrize("readers, mgets", [(40, 1), (batches.MAX_BATCH + 1, 2)])
async def test_l2_readers_arriving_together_share_one_mget_and_each_gets_its_own_answer(readers, mgets):
    answers = await stored_answers(range(900_001, 900_001 + readers))
    before = await mget_calls()
    read = await asyncio.gather(*(shared.read_answer(user_id) for user_id in answers))
    assert await mget_calls() - before == mgets
    assert [(answer.body, answer.etag) for answer, _ in read] == [(a.body, a.etag) for a in answers.values()]
    assert {generation for _, generation in read} == {None}  # never written: the guard's "0"

    redis.Redis.from_url(settings.REDIS_URL).incr(cache.user_generation_key(900_001))
    (first, generation), (other, _) = await asyncio.gather(shared.read_answer(900_001), shared.read_answer(900_002))
    assert generation == b"1" and first.body == answers[900_001].body and other.body == answers[900_002].body


async def test_a_reader_that_leaves_does_not_hold_up_the_others_of_its_mget():
    answers = await stored_answers(range(900_101, 900_104))
    leaving = asyncio.ensure_future(shared.read_answer(900_101))
    staying = [asyncio.ensure_future(shared.read_answer(user_id)) for user_id in (900_102, 900_103)]
    await asyncio.sleep(0)  # all three queued in one batch
    leaving.cancel()
    assert [answer.body for answer, _ in await asyncio.gather(*staying)] == [answers[900_102].body,
                                                                             answers[900_103].body]
    assert leaving.cancelled()


async def test_stores_of_one_turn_share_one_pipeline_and_each_keeps_its_own_guard(monkeypatch):
    answers = {user_id: CachedResponse.of(200, [(b"ETag", b'"%d"' % user_id)], b'{"id": %d}' % user_id, False)
               for user_id in range(900_301, 900_306)}
    generations = {user_id: (await shared.read_answer(user_id))[1] for user_id in answers}
    redis.Redis.from_url(settings.REDIS_URL).incr(cache.user_generation_key(900_303))  # a write in between
    pipelines = []
    runtime = current()
    run = runtime.stores._run

    async def counted(commands):
        pipelines.append(len(commands))
        return await run(commands)

    monkeypatch.setattr(runtime.stores, "_run", counted)
    await asyncio.gather(*(shared.store_answer(user_id, answer, generations[user_id])
                           for user_id, answer in answers.items()))
    assert pipelines == [5]
    kept = {user_id: (await shared.read_answer(user_id))[0] for user_id in answers}
    assert {user_id for user_id, answer in kept.items() if answer is not None} == set(answers) - {900_303}
    assert kept[900_301].body == answers[900_301].body


async def test_a_writers_own_answer_is_kept_only_if_no_other_write_bumped_in_between():
    answer = CachedResponse.of(200, [(b"ETag", b'"w"')], b'{"id": 900201}', False)
    generation = await shared.read_generation(900_201)
    await cache.invalidate_users_async([900_201], fresh={900_201: (answer, generation)})
    kept, _ = await shared.read_answer(900_201)
    assert kept is not None and kept.body == answer.body

    generation = await shared.read_generation(900_201)
    redis.Redis.from_url(settings.REDIS_URL).incr(cache.user_generation_key(900_201))  # a later write's bump
    await cache.invalidate_users_async([900_201], fresh={900_201: (answer, generation)})
    assert (await shared.read_answer(900_201))[0] is None  # invalidated, and not kept


# --- The race: a reader paused between its database read and its cache store -------------------


async def paused_view(read_done: asyncio.Event, release: asyncio.Event):
    """The view's read, paused once it has the row and before its answer reaches the edge."""
    original = UserViewSet.aretrieve  # taken before the test patches it

    async def retrieve(self, request, pk):
        response = await original(self, request, pk)
        read_done.set()
        await release.wait()
        return response

    return retrieve


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tier", ["L1", "L2"])
async def test_reader_paused_across_a_committed_write_stores_nothing_stale(
    listening, asgi_client, monkeypatch, tier
):
    user = await sync_to_async(User.objects.create_user)(f"racer{tier}", f"r{tier}@example.com", PASSWORD, bio="old")
    if tier == "L2":
        current().local_cache.disable()  # the L2 path alone
    read_done, release = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(UserViewSet, "aretrieve", await paused_view(read_done, release))
    reader = asyncio.create_task(asgi_client.get(f"/api/v1/users/{user.pk}/"))
    await read_done.wait()  # the reader holds the old row

    await sync_to_async(accounts.user_update)(user=user, data={"bio": "new"})  # commits, invalidates
    release.set()
    assert (await reader).json()["bio"] == "old"  # that one request raced; nothing may keep its answer
    monkeypatch.undo()
    assert user_cache_key(user.pk).encode() not in redis_keys()

    after = await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert after.headers["x-cache"] == "MISS" and after.json()["bio"] == "new"
    again = await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert again.headers["x-cache"] == tier and again.json()["bio"] == "new"


# --- The ASGI hit path ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_l1_hit_repeats_djangos_bytes_and_headers(listening, asgi_client):
    user = await sync_to_async(User.objects.create_user)("hit", "hit@example.com", PASSWORD, bio="b")
    url = f"/api/v1/users/{user.pk}/"

    miss = await asgi_client.get(url)
    html = await asgi_client.get(url, headers={"Accept": "text/html"})  # Django's alone
    hit = await asgi_client.get(url)
    head = await asgi_client.head(url)

    assert miss.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "L1" and head.headers["x-cache"] == "L1"
    assert html.headers["x-cache"] == "MISS" and html.headers["content-type"].startswith("text/html")
    assert hit.content == miss.content and head.content == b""
    assert {k: v for k, v in hit.headers.items() if k != "x-cache"} == {
        k: v for k, v in miss.headers.items() if k != "x-cache"
    }
    assert "email" not in hit.json()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "params, headers",
    [
        ({"format": "json"}, {}),
        ({}, {"Accept": "application/json; indent=4"}),
        ({}, {"Accept": "text/html"}),
        ({}, {"Accept": "text/html, application/*"}),
        ({}, {"Accept": "text/*"}),
        ({}, {"Accept": "application/json; q=0.9"}),
    ],
)
async def test_only_plain_json_requests_take_the_hit_path(listening, asgi_client, params, headers):
    user = await sync_to_async(User.objects.create_user)("plain", "plain@example.com", PASSWORD)
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    assert (await asgi_client.get(url)).headers["x-cache"] == "L1"

    response = await asgi_client.get(url, params=params, headers=headers)
    assert response.status_code == 200 and response.headers["x-cache"] == "MISS"  # Django's, from PostgreSQL


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("accept", ["application/json", "application/json, text/plain, */*", "*/*", "application/*"])
async def test_common_json_accept_headers_take_the_hit_path_with_djangos_bytes(listening, asgi_client, accept):
    user = await sync_to_async(User.objects.create_user)("accept", "accept@example.com", PASSWORD)
    url = f"/api/v1/users/{user.pk}/"
    through_django = await asgi_client.get(url, headers={"Accept": accept})
    hit = await asgi_client.get(url, headers={"Accept": accept})
    assert hit.headers["x-cache"] == "L1"
    assert hit.content == through_django.content
    assert hit.headers["content-type"] == through_django.headers["content-type"] == "application/json"


@pytest.mark.django_db(transaction=True)
async def test_hit_path_still_rejects_a_host_django_would_reject(listening, asgi_client):
    user = await sync_to_async(User.objects.create_user)("host", "host@example.com", PASSWORD)
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    assert (await asgi_client.get(url, headers={"Host": "evil.example"})).status_code == 400
    # Two Host headers: Django joins them into one invalid host, and so must the hit path.
    assert (await asgi_client.get(url, headers=[("Host", "evil.example"), ("Host", "localhost")])).status_code == 400
    assert (await asgi_client.get(url, headers=[("Host", "localhost"), ("Host", "localhost")])).status_code == 400


@pytest.mark.django_db(transaction=True)
async def test_writer_reads_its_own_write_from_the_same_worker(listening, asgi_client):
    user = await sync_to_async(User.objects.create_user)("own", "own@example.com", PASSWORD, bio="before")
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    assert (await asgi_client.get(url)).headers["x-cache"] == "L1"

    token = (await sync_to_async(bearer)(user))["HTTP_AUTHORIZATION"]
    patched = await asgi_client.patch(url, json={"bio": "after"}, headers={"Authorization": token})
    assert patched.status_code == 200
    after = await asgi_client.get(url)
    assert after.headers["x-cache"] == "MISS" and after.json()["bio"] == "after"


@pytest.mark.django_db(transaction=True)
async def test_soft_deleted_user_stops_being_served(listening, asgi_client):
    user = await sync_to_async(User.objects.create_user)("gone", "gone@example.com", PASSWORD)
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    await asgi_client.get(url)
    await sync_to_async(accounts.user_soft_delete)(user=user)
    assert (await asgi_client.get(url)).status_code == 404


# --- The listener --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_listener_applies_messages_from_other_workers(listening, asgi_client):
    users = [await sync_to_async(User.objects.create_user)(f"l{i}", f"l{i}@example.com", PASSWORD) for i in range(2)]
    for user in users:
        await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert len(current().local_cache) == 2

    await from_another_worker([users[0].pk])
    await wait_for(lambda: current().local_cache.get(users[0].pk) is None)  # no loader here to read it again
    assert current().local_cache.get(users[1].pk) is not None

    await send_to_group({"type": cache.INVALIDATION_MESSAGE, "all": True})
    await wait_for(lambda: len(current().local_cache) == 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kept_by_writer", [False, True])
async def test_a_profile_held_in_l1_is_read_again_when_another_worker_changes_it(
    listening, loading, asgi_client, kept_by_writer
):
    user = await sync_to_async(User.objects.create_user)("hot", "hot@example.com", PASSWORD, bio="old")
    for _ in range(2):
        await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert current().local_cache.get(user.pk) is not None

    await sync_to_async(User.objects.filter(pk=user.pk).update)(bio="new")  # another worker's write
    kept = None
    if kept_by_writer:  # told apart from the row: the refresh must take L2's answer, not read PostgreSQL
        written = await sync_to_async(User.objects.get)(pk=user.pk)
        written.bio = "kept by the writer"
        kept = {user.pk: current().loader.render(written, False)}
    await from_another_worker([user.pk], kept)

    bio = "kept by the writer" if kept_by_writer else "new"
    await wait_for(lambda: f'"{bio}"'.encode() in getattr(current().local_cache.get(user.pk), "body", b""))
    first = await asgi_client.get(f"/api/v1/users/{user.pk}/")  # the first read after the write
    assert first.headers["x-cache"] == "L1" and first.json()["bio"] == bio
    assert user_cache_key(user.pk).encode() in redis_keys()  # in L2 for the other workers too


async def fill_l1(asgi_client, prefix: str, count: int) -> list[User]:
    users = [await sync_to_async(User.objects.create_user)(f"{prefix}{i}", f"{prefix}{i}@example.com", PASSWORD)
             for i in range(count)]
    for user in users:
        await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert len(current().local_cache) == count
    return users


async def take_a_number() -> int:
    """A number taken and never delivered: a sender cut off between its INCR and its send."""
    from channels.layers import get_channel_layer

    return await get_channel_layer().connection(0).incr(INVALIDATION_COUNT)


@pytest.mark.django_db(transaction=True)
async def test_a_number_that_never_arrives_stops_the_proofs_then_empties_l1(listening, asgi_client, caplog):
    caplog.set_level(logging.WARNING, logger="users.cache")
    users = await fill_l1(asgi_client, "hole", 3)
    await from_another_worker([users[0].pk])
    await wait_for(lambda: current().local_cache.get(users[0].pk) is None)
    await asyncio.sleep(0.5)  # two probes: nothing missing, the rest is kept
    assert current().local_cache.fresh and len(current().local_cache) == 2

    await take_a_number()  # it may have named anyone
    started = time.monotonic()
    await wait_for(lambda: not current().local_cache.fresh, timeout=2)  # no proof while it is missing
    assert time.monotonic() - started <= current().local_cache.max_staleness + 0.1
    await wait_for(lambda: current().local_cache.fresh, timeout=3)  # given up as lost after a send's bound
    assert len(current().local_cache) == 0 and "missed 1 message(s)" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_a_number_late_in_coming_keeps_l1_until_it_arrives(listening, asgi_client):
    users = await fill_l1(asgi_client, "late", 2)
    number = await take_a_number()  # a send that is slow to complete
    await asyncio.sleep(0.3)  # a probe came back behind it: not yet proof
    await from_another_worker([users[0].pk], number=number)
    await wait_for(lambda: current().local_cache.get(users[0].pk) is None)
    await asyncio.sleep(0.5)
    assert current().local_cache.fresh and current().local_cache.get(users[1].pk) is not None  # no hole: kept


@pytest.mark.django_db(transaction=True)
async def test_a_count_that_went_back_empties_l1(listening, asgi_client, caplog):
    caplog.set_level(logging.WARNING, logger="users.cache")
    from channels.layers import get_channel_layer

    await fill_l1(asgi_client, "back", 2)
    await from_another_worker([])
    await get_channel_layer().connection(0).set(INVALIDATION_COUNT, 0)  # Redis restarted empty, or failed over
    await wait_for(lambda: len(current().local_cache) == 0)
    assert "Redis lost its data" in caplog.text


async def test_lifespan_starts_and_stops_the_listener(close_db_connections):
    from sidus.asgi import application

    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    started = []

    async def receive():
        if sent and sent[-1]["type"] == "lifespan.startup.complete":
            started.append(current())  # the worker's own runtime
            assert started[0].db.running and started[0].listener.joined.is_set() and started[0].local_cache.enabled
        return next(messages)

    async def send(message):
        sent.append(message)

    await application({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not started[0].local_cache.enabled and current() is not started[0]


async def from_another_worker(ids: list[int], kept: dict[int, CachedResponse] | None = None,
                              number: int | None = None) -> None:
    """An invalidation as another worker's write sends it: its L2 entries deleted and their
    generations bumped first, so that what this worker reads again (`refresh`) is the new row,
    or the answer the writer `kept` in L2 (the lean PATCH). `number`: one taken earlier."""
    from channels.layers import get_channel_layer

    client = redis.Redis.from_url(settings.REDIS_URL)
    for user_id in ids:
        client.delete(user_cache_key(user_id))
        client.incr(cache.user_generation_key(user_id))
        if kept and user_id in kept:
            client.set(user_cache_key(user_id), encode(kept[user_id]))
    message = {"type": cache.INVALIDATION_MESSAGE, "ids": ids, "origin": "another-worker"}
    if number is None:
        await send_to_group(message)
    else:
        await get_channel_layer().group_send(cache.INVALIDATION_GROUP, {**message, "number": number})


# --- The broadcaster ------------------------------------------------------------------------------


@pytest.fixture
async def member():
    """A channel in the invalidation group, as another worker's listener would be."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(cache.INVALIDATION_GROUP, channel)

    async def next_invalidation() -> dict:
        while not (message := await asyncio.wait_for(layer.receive(channel), 2))["ids"]:
            pass  # names nobody
        return message

    yield next_invalidation
    await layer.group_discard(cache.INVALIDATION_GROUP, channel)


async def test_writers_invalidations_go_out_as_one_message(member):
    current().broadcaster.start()
    try:
        # Three writers finish their commits while the loop is busy: one message.
        sent = [asyncio.ensure_future(current().broadcaster.send_async([user_id], 1)) for user_id in (3, 1, 2)]
        assert (await member())["ids"] == [1, 2, 3]
        assert await asyncio.gather(*sent) == [None, None, None]  # each writer learns it is out
        await sync_to_async(cache.invalidate_users)([7])  # a sync writer, through the loop: once it is out
        assert (await member())["ids"] == [7]
    finally:
        await current().broadcaster.stop()
    assert current().broadcaster.loop is None  # stopped: sync writers use a loop of their own


async def test_broadcaster_sends_what_is_queued_when_it_stops(member):
    current().broadcaster.start()
    sent = asyncio.ensure_future(current().broadcaster.send_async([5], 1))
    await asyncio.sleep(0)  # queued
    await current().broadcaster.stop()
    assert (await member())["ids"] == [5] and sent.done()


async def test_a_message_that_cannot_be_sent_is_kept_for_the_next_invalidation(member, monkeypatch):
    from channels.layers import get_channel_layer
    from redis.exceptions import ConnectionError as RedisConnectionError

    layer = get_channel_layer()

    async def unreachable(group, message):
        raise RedisConnectionError("Redis went away")

    current().broadcaster.start()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(layer, "group_send", unreachable)
            await sync_to_async(cache.invalidate_users)([4])
        assert 4 in current().backlog and not current().redis.health.available()
        await sync_to_async(cache.invalidate_users)([6])  # Redis is back: both go out
        assert (await member())["ids"] == [4, 6]
    finally:
        await current().broadcaster.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_reader_racing_the_writers_own_invalidation_keeps_nothing_stale(listening, asgi_client, monkeypatch):
    """The writer's worker reads L2 while its invalidation is between commit and L2's delete."""
    from users.cache import invalidation

    user = await sync_to_async(User.objects.create_user)("self-race", "sr@example.com", PASSWORD, bio="old")
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    current().local_cache.clear()  # L2 holds the old answer, L1 nothing
    paused, release = asyncio.Event(), asyncio.Event()
    real = invalidation.redis_call

    async def slow_call(call):
        paused.set()
        await release.wait()
        return await real(call)

    monkeypatch.setattr(invalidation, "redis_call", slow_call)
    writer = asyncio.create_task(sync_to_async(accounts.user_update)(user=user, data={"bio": "new"}))
    await wait_for(paused.is_set)
    assert (await asgi_client.get(url)).json()["bio"] == "old"  # from L2: the write is not answered yet
    release.set()
    await writer
    after = await asgi_client.get(url)
    assert after.headers["x-cache"] != "L1" and after.json()["bio"] == "new"


@pytest.mark.django_db(transaction=True)
async def test_a_new_master_has_l2_and_l1_emptied_before_l2_is_read_again(listening, asgi_client, caplog):
    caplog.set_level(logging.WARNING, logger="users.cache")
    master_check = current().redis.master_check

    user = await sync_to_async(User.objects.create_user)("failover", "fo@example.com", PASSWORD)
    for _ in range(2):
        await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert user_cache_key(user.pk).encode() in redis_keys() and len(current().local_cache) == 1
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(master_check.MARKER, "the-replication-id-of-another-master")  # as a promoted replica holds it

    await wait_for(lambda: "A new Redis master" in caplog.text)
    assert user_cache_key(user.pk).encode() not in redis_keys() and len(current().local_cache) == 0
    assert client.get(master_check.MARKER) == client.info("replication")["master_replid"].encode()
    master_check.distrust()  # any error: L2 is not read until the next check
    assert (await asgi_client.get(f"/api/v1/users/{user.pk}/")).headers["x-cache"] == "MISS"
    await wait_for(lambda: master_check.trusted)


async def test_a_worker_that_loses_the_race_for_a_new_master_does_not_empty_l2_again(monkeypatch):
    # Two workers meet a new master. The late one read the old marker, then took the lock only once
    # the first had emptied L2, set the marker and let go: it must see the marker, not empty L2 again
    # (a fresh entry lost to every worker: the failover test once saw it).
    from users.cache import connection

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(MasterCheck.MARKER, "the-replication-id-of-another-master")
    first, late = MasterCheck(), MasterCheck()
    real, calls = connection.redis_call, []
    late_read, first_done = asyncio.Event(), asyncio.Event()

    async def gated(call):
        if asyncio.current_task().get_name() == "late":
            calls.append(call)
            if len(calls) == 3:  # info, the marker's read, then the lock
                late_read.set()
                await first_done.wait()
        return await real(call)

    monkeypatch.setattr(connection, "redis_call", gated)
    waiting = asyncio.create_task(late.check(), name="late")
    await late_read.wait()
    assert await first.check() is True  # emptied L2
    client.set(user_cache_key(7), b"written after the new master was checked")
    first_done.set()
    assert await waiting is False and late.trusted
    assert client.get(user_cache_key(7)) is not None


@pytest.mark.django_db(transaction=True)
async def test_a_user_in_the_ledger_of_unsent_invalidations_is_not_read_from_l2(asgi_client, close_db_connections):
    # What a writer cut off from Redis leaves (users/cache/unsent.py): L2 may hold the old profile.
    unsent = current().unsent
    from users.models import UnsentInvalidation

    user = await sync_to_async(User.objects.create_user)("ledger", "ledger@example.com", PASSWORD, bio="old")
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    assert (await asgi_client.get(url)).headers["x-cache"] == "L2"
    await unsent.record([user.pk])
    await unsent.record([user.pk])  # failed twice: version 2
    assert (await asgi_client.get(url)).headers["x-cache"] == "MISS"

    forgotten, sent = [], []

    async def fails_while_another_write_fails(ids):
        await unsent.record(ids)  # the same user's next write, also unsent, before this send ends
        raise redis.ConnectionError("cut")

    with pytest.raises(redis.ConnectionError):
        await unsent.catch_up(fails_while_another_write_fails, forgotten.append)
    assert forgotten == [[user.pk]] and unsent.gated == {user.pk}

    async def send(ids):
        sent.append(ids)

    await unsent.catch_up(send, forgotten.append)
    assert sent == [[user.pk]] and unsent.gated == frozenset()
    assert not await UnsentInvalidation.objects.aexists()
    assert (await asgi_client.get(url)).headers["x-cache"] == "L2"  # read from L2 again (the send was a stand-in)


@pytest.mark.django_db(transaction=True)
async def test_a_send_made_before_a_rows_last_write_does_not_remove_it(close_db_connections):
    unsent = current().unsent
    from users.models import UnsentInvalidation

    await unsent.record([41])

    async def send_then_another_write_fails(ids):
        await unsent.record(ids)  # written again after this send went out: its invalidation is not covered

    await unsent.catch_up(send_then_another_write_fails, lambda ids: None)
    assert [(row.user_id, row.version) async for row in UnsentInvalidation.objects.all()] == [(41, 2)]
    assert unsent.gates(41)  # still not read from L2
    await unsent.catch_up(lambda ids: asyncio.sleep(0), lambda ids: None)
    assert not await UnsentInvalidation.objects.aexists() and unsent.gated == frozenset()


@pytest.mark.django_db(transaction=True)
async def test_a_user_recorded_while_a_probe_reads_the_ledger_stays_gated(monkeypatch, close_db_connections):
    unsent = current().unsent

    read = unsent.execute

    async def a_write_fails_during_the_reading(query, params, *, fetch=False):
        rows = await read(query, params, fetch=fetch)
        if query == READ:
            await unsent.record([61])  # committed after the reading's snapshot
        return rows

    monkeypatch.setattr(unsent, "execute", a_write_fails_during_the_reading)
    await unsent.catch_up(lambda ids: asyncio.sleep(0), lambda ids: None)
    assert unsent.gates(61)  # the next probe reads its row
    monkeypatch.undo()
    await unsent.catch_up(lambda ids: asyncio.sleep(0), lambda ids: None)
    assert not unsent.gates(61)


@pytest.mark.django_db(transaction=True)
async def test_a_ledger_longer_than_one_reading_keeps_every_user_out_of_l2(monkeypatch, close_db_connections):
    unsent = current().unsent

    monkeypatch.setattr(unsent, "limit", 2)
    await unsent.record([51, 52, 53])
    sent = []

    async def send(ids):
        sent.append(ids)

    await unsent.catch_up(send, lambda ids: None)
    assert sent == [[51, 52]] and unsent.gates(53) and unsent.gates(99)  # 53 unread: every user waits
    await unsent.catch_up(send, lambda ids: None)
    assert sent[-1] == [53] and not unsent.gates(53) and not unsent.gates(99)
