"""What a worker's listener received of the numbered group messages, and what that proves.

Every group message takes the next number of one count in Redis (`broadcast.send_to_group`).
Every quarter of USER_CACHE_MAX_STALENESS the listener reads the count, then sends a probe to its
own channel. A channel is a FIFO: when the probe comes back, every message whose send completed
before the count was read has been received, unless it was lost. So once every number up to the
probe's count is in, L1 is proven to hold no change answered before that read. A number that
stays missing for longer than a send may take (`broadcast.SEND_TIMEOUT`) was lost: a full channel,
an expired message, a sender cut off mid-send. Then L1 is emptied, which makes it fresh as well.
A count lower than one seen before means Redis lost its data (a restart, a failover): L1 is
emptied and the numbers start again from there.

The cost per worker and interval is one GET and one message to itself, whatever the number of
workers; a write costs one INCR and one message to each worker.
"""
import math


class Receipts:
    """The numbers received, the ones missing and the probes waiting for them."""

    def __init__(self, lost_after: float) -> None:
        self.lost_after = lost_after
        self._floor: int | None = None  # every number up to it is received, or missing below
        self._seen: set[int] = set()  # received above the floor
        self._missing: dict[int, float] = {}  # number -> the probe time after which it is lost
        self._proofs: list[tuple[float, int]] = []  # (probe time, count) of returned probes
        self.highest = 0  # the highest number received: a count read later cannot be lower

    def start(self, count: int) -> None:
        """Listening from now, with L1 empty: the numbers up to `count` concern no entry of it."""
        self._floor = count
        self.highest = min(self.highest, count)
        self._seen.clear()
        self._missing.clear()
        self._proofs.clear()

    def received(self, number: int) -> None:
        self.highest = max(self.highest, number)
        if self._floor is None:
            return
        if number > self._floor:
            self._seen.add(number)
        else:
            self._missing.pop(number, None)

    def probe_returned(self, probed_at: float, count: int, highest: int = 0) -> int:
        """A probe sent after reading `count` at `probed_at` came back; `highest` is the highest
        number received before that read. Returns how many numbers were given up as lost, or -1 if
        the count went back (Redis lost it): either way, empty L1."""
        if self._floor is None:
            self.start(count)
        elif count < max(self._floor, highest):  # below a count read, or a number received, before
            self.start(count)
            self._proofs.append((probed_at, count))
            return -1
        for number in range(self._floor + 1, count + 1):
            if number not in self._seen:
                self._missing[number] = probed_at + self.lost_after
        self._seen = {number for number in self._seen if number > count}
        self._floor = max(self._floor, count)
        lost = [number for number, deadline in self._missing.items() if deadline <= probed_at]
        for number in lost:
            del self._missing[number]
        self._proofs.append((probed_at, count))
        return len(lost)

    def proven(self) -> float | None:
        """The latest probe time at which L1 is proven fresh: every number up to its count is in."""
        lowest_missing = min(self._missing, default=math.inf)
        proven = None
        while self._proofs and self._proofs[0][1] < lowest_missing:
            proven = self._proofs.pop(0)[0]
        return proven
