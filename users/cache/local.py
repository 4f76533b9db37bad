"""L1: each worker's own bounded LRU of answers, read by the edge with no I/O."""
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from django.conf import settings


class LocalCache:
    """A bounded, thread-safe LRU with a TTL and a generation per key, that answers only while
    it is proven fresh.

    `token(key)` taken before reading the source, passed to `set()`, makes the store a no-op if
    the key was invalidated (or the cache cleared) meanwhile. on_commit callbacks invalidate from
    worker threads while the event loop reads, hence the lock around every change.

    Freshness: `prove_fresh(sent_at)` says that every invalidation sent before `sent_at` has been
    applied (the listener calls it when its probe came back and no numbered message before it is
    missing, users/cache/receipts.py). `get()` answers only until `sent_at + max_staleness`, a
    comparison with the clock and no I/O; after a lapse the next proof empties the cache before it
    answers again.
    """

    def __init__(self, max_entries: int, ttl: float, max_staleness: float = 1.0,
                 max_generations: int = 100_000) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_staleness = max_staleness
        self.max_generations = max_generations
        self.enabled = False
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self._generations: dict[int, int] = {}
        self._epoch = 0
        self._fresh_until = 0.0

    @property
    def fresh(self) -> bool:
        return time.monotonic() <= self._fresh_until

    def prove_fresh(self, sent_at: float) -> None:
        """Every invalidation sent before `sent_at` (time.monotonic()) was applied."""
        with self._lock:
            if not self.enabled:
                return
            if time.monotonic() > self._fresh_until:
                self._clear()  # silent for a while: what it holds may have missed invalidations
            self._fresh_until = max(self._fresh_until, sent_at + self.max_staleness)

    def __len__(self) -> int:
        return len(self._entries)

    def token(self, key: int) -> tuple[int, int]:
        with self._lock:
            return self._epoch, self._generations.get(key, 0)

    def get(self, key: int) -> Any:
        """The fresh answer for `key`, or None. It runs on every L1 hit, so it takes no lock: with
        int keys each OrderedDict call is one atomic step under the GIL, and a writer that removes
        the key in between only makes this read come before that write (or a miss)."""
        now = time.monotonic()
        if now > self._fresh_until:
            return None
        item = self._entries.get(key)
        if item is None:
            return None
        if item[0] <= now:
            self._entries.pop(key, None)
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:  # invalidated meanwhile
            return None
        return item[1]

    def set(self, key: int, value: Any, token: tuple[int, int]) -> bool:
        with self._lock:
            if not self.enabled or token != (self._epoch, self._generations.get(key, 0)):
                return False
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def invalidate(self, keys: Iterable[int]) -> dict[int, Any]:
        """Drops `keys` and fails every token taken for them; returns what was held, unexpired
        or not (the listener reads those again: `refresh`)."""
        dropped = {}
        with self._lock:
            for key in keys:
                item = self._entries.pop(key, None)
                if item is not None:
                    dropped[key] = item[1]
                self._generations[key] = self._generations.get(key, 0) + 1
            if len(self._generations) > self.max_generations:
                # Forget the generations; a new epoch still fails every token taken before.
                self._generations.clear()
                self._epoch += 1
        return dropped

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._generations.clear()
        self._epoch += 1

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        """While invalidations may be missed (no listener), keep nothing."""
        with self._lock:
            self.enabled = False
            self._fresh_until = 0.0
            self._clear()

    @classmethod
    def from_settings(cls) -> "LocalCache":
        return cls(settings.USER_CACHE_L1_MAX_ENTRIES, settings.USER_CACHE_L1_TTL, settings.USER_CACHE_MAX_STALENESS)
