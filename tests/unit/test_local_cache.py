"""L1 and the receipts that prove it fresh: memory and arithmetic, no service."""
import time

from users.cache.local import LocalCache
from users.cache.receipts import Receipts


def enabled_cache(**kwargs) -> LocalCache:
    local = LocalCache(**{"max_entries": 3, "ttl": 60.0, **kwargs})
    local.enable()
    local.prove_fresh(time.monotonic())
    return local


def test_l1_evicts_least_recently_used_beyond_its_bound():
    local = enabled_cache()
    for key in (1, 2, 3):
        local.set(key, f"v{key}", local.token(key))
    local.get(1)  # 1 is now the most recently used
    local.set(4, "v4", local.token(4))

    assert len(local) == 3
    assert local.get(2) is None
    assert [local.get(k) for k in (1, 3, 4)] == ["v1", "v3", "v4"]


def test_l1_entries_expire_after_ttl():
    local = enabled_cache(ttl=0.05)
    local.set(1, "v", local.token(1))
    assert local.get(1) == "v"
    time.sleep(0.06)
    assert local.get(1) is None


def test_l1_refuses_a_store_whose_key_was_invalidated_after_the_read():
    local = enabled_cache()
    token = local.token(1)
    local.invalidate([1])
    assert local.set(1, "old", token) is False
    assert local.get(1) is None
    assert local.set(1, "new", local.token(1)) is True


def test_l1_refuses_stores_after_clear_even_when_it_forgets_generations():
    local = enabled_cache(max_generations=2)
    token = local.token(1)
    local.invalidate([2, 3, 4])  # more generations than kept: they are forgotten, the epoch moves
    assert local.set(1, "old", token) is False
    token = local.token(1)
    local.clear()
    assert local.set(1, "old", token) is False


def test_l1_answers_only_while_its_last_proof_is_younger_than_the_bound():
    local = enabled_cache(max_staleness=0.1)
    local.set(1, "v", local.token(1))
    time.sleep(0.06)
    local.prove_fresh(time.monotonic())  # in time: nothing is lost
    time.sleep(0.06)
    assert local.get(1) == "v"
    time.sleep(0.06)
    assert local.get(1) is None and not local.fresh  # 0.12 s since the last proof: silent too long
    local.prove_fresh(time.monotonic() - 0.05)
    assert local.fresh and local.get(1) is None  # back, but emptied: it may have missed invalidations


def test_l1_is_not_fresh_before_its_first_proof_nor_after_disable():
    local = LocalCache(max_entries=3, ttl=60.0)
    local.enable()
    local.set(1, "v", local.token(1))
    assert not local.fresh and local.get(1) is None
    local.prove_fresh(time.monotonic())
    local.set(1, "v", local.token(1))
    assert local.get(1) == "v"
    local.disable()
    local.prove_fresh(time.monotonic())  # a late proof does not switch a disabled L1 back on
    assert not local.fresh


def test_l1_stores_nothing_while_disabled():
    local = enabled_cache()
    local.set(1, "v", local.token(1))
    local.disable()
    assert local.get(1) is None
    assert local.set(1, "v", local.token(1)) is False


def test_receipts_prove_a_probe_once_every_number_up_to_its_count_is_in():
    receipts = Receipts(lost_after=1.0)
    receipts.start(10)
    assert receipts.probe_returned(100.0, 10) == 0 and receipts.proven() == 100.0
    receipts.received(12)
    assert receipts.probe_returned(100.25, 12) == 0 and receipts.proven() is None  # 11 is missing
    receipts.received(11)
    assert receipts.proven() == 100.25  # proven the moment it arrives
    assert receipts.probe_returned(100.5, 13) == 0 and receipts.proven() is None
    assert receipts.probe_returned(101.0, 13) == 0  # 13 missing since 100.5: not yet lost
    assert receipts.probe_returned(101.5, 13) == 1 and receipts.proven() == 101.5  # lost: L1 emptied
    assert receipts.probe_returned(101.75, 5) == -1 and receipts.proven() == 101.75  # the count went back
    receipts.received(9)  # handed out after the next probe's read: no harm
    assert receipts.probe_returned(102.0, 8, highest=5) == 0
    assert receipts.probe_returned(102.25, 8, highest=9) == -1  # below a number that arrived before the read
