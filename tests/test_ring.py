"""RingBuffer policies under real concurrent producers and consumers."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from pipeline.core.items import EndOfStream, StreamInfo
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty

PRODUCERS, CONSUMERS, PER_PRODUCER = 4, 3, 2000


def _run_concurrently(ring: RingBuffer) -> list:
    """4 producers put distinct items, 3 consumers drain until closed; returns all got."""
    got: list = []
    lock = threading.Lock()
    start = threading.Barrier(PRODUCERS + CONSUMERS)

    def produce(p: int) -> None:
        start.wait()
        for i in range(PER_PRODUCER):
            ring.put((p, i), timeout=10)

    def consume() -> None:
        start.wait()
        local = []
        while True:
            try:
                local.append(ring.get(timeout=10))
            except RingClosed:
                break
        with lock:
            got.extend(local)

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(PRODUCERS)]
    consumers = [threading.Thread(target=consume) for _ in range(CONSUMERS)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join(30)
    ring.close()
    for t in consumers:
        t.join(30)
    assert not any(t.is_alive() for t in producers + consumers)
    return got


def test_block_loses_and_duplicates_nothing_under_concurrency():
    ring = RingBuffer(8, "block", "t")
    got = _run_concurrently(ring)
    assert len(got) == PRODUCERS * PER_PRODUCER
    assert Counter(got) == Counter((p, i) for p in range(PRODUCERS) for i in range(PER_PRODUCER))
    # Each producer's items arrive in the order it put them (per consumer they are FIFO).
    assert ring.stats.dropped == 0
    assert ring.stats.puts == ring.stats.gets == PRODUCERS * PER_PRODUCER


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_drop_policies_count_exactly_what_they_drop(policy):
    ring = RingBuffer(8, policy, "t")
    got = _run_concurrently(ring)
    total = PRODUCERS * PER_PRODUCER
    assert len(set(got)) == len(got), "an item was delivered twice"
    assert ring.stats.dropped == total - len(got)
    assert ring.stats.gets == len(got)


def test_drop_oldest_keeps_newest_and_drop_newest_keeps_oldest():
    oldest = RingBuffer(3, "drop_oldest")
    newest = RingBuffer(3, "drop_newest")
    for i in range(10):
        oldest.put(i)
        newest.put(i)
    assert [oldest.get(0) for _ in range(3)] == [7, 8, 9]
    assert [newest.get(0) for _ in range(3)] == [0, 1, 2]
    assert oldest.stats.dropped == newest.stats.dropped == 7


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest", "block"])
def test_control_items_are_outside_the_capacity(policy):
    """Never dropped, never evicting, never waiting: a live stream's end goes in behind its
    last frame, and its first frame is not held back behind its stream info."""
    ring = RingBuffer(1, policy)
    ring.put(1)
    assert ring.put(EndOfStream("s"), timeout=0) is True
    assert ring.get(0) == 1 and isinstance(ring.get(0), EndOfStream) and ring.stats.dropped == 0
    opened = RingBuffer(1, policy)
    opened.put(StreamInfo("s", "h264"))
    assert opened.put(1, timeout=0) is True
    # Now full of data: drop_oldest evicts 1, drop_newest drops 2, block stays full.
    assert opened.put(2, timeout=0) is (policy == "drop_oldest")
    assert isinstance(opened.get(0), StreamInfo)
    assert opened.get(0) == (2 if policy == "drop_oldest" else 1) and len(opened) == 0


def test_close_wakes_every_waiter():
    empty = RingBuffer(1, "block")
    full = RingBuffer(1, "block")
    full.put("x")
    woke = []
    ready = threading.Barrier(7)

    def getter() -> None:
        ready.wait()
        try:
            empty.get()
        except RingClosed:
            woke.append("get")

    def putter() -> None:
        ready.wait()
        try:
            full.put("y")
        except RingClosed:
            woke.append("put")

    threads = [threading.Thread(target=getter) for _ in range(3)] + [threading.Thread(target=putter) for _ in range(3)]
    for t in threads:
        t.start()
    ready.wait()
    # The waiters are blocked (no timeout); closing must release all of them.
    empty.close()
    full.close()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    assert sorted(woke) == ["get"] * 3 + ["put"] * 3


def test_timeouts_and_closed_drain():
    ring = RingBuffer(1, "block")
    with pytest.raises(RingEmpty):
        ring.get(timeout=0.01)
    ring.put(1)
    assert ring.put(2, timeout=0.01) is False
    ring.close()
    assert ring.get(0) == 1  # what was in it is still delivered
    with pytest.raises(RingClosed):
        ring.get(0)
    with pytest.raises(RingClosed):
        ring.put(3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="policy"):
        RingBuffer(1, "lifo")  # type: ignore[arg-type]
