"""Batches staged ahead of the learner: a thread samples while the device trains.

As Acme's ``utils.prefetch``: a daemon thread pulls from the source iterator and keeps up
to ``buffer_size`` items ready (``stage`` applied in the thread, for example a
``jax.device_put`` so the host-to-device copy overlaps the previous update). An error in
the thread is raised by the next ``next()`` in the consumer. :func:`stacked` groups n
batches into one with a leading axis, for an update that trains on n in one jitted call.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import numpy as np

from mallocmuzero.replay.dataset import ReplayBatch

T = TypeVar("T")
_PUT_WAIT_S = 0.5  # how often a thread with a full buffer checks whether it should stop


@dataclasses.dataclass
class _Raised:
    error: BaseException


class Prefetcher(Iterator[T], Generic[T]):
    """``source``'s items, ``buffer_size`` of them prepared ahead by a daemon thread."""

    def __init__(
        self,
        source: Iterator[T],
        buffer_size: int = 2,
        stage: Callable[[T], T] | None = None,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1 (got {buffer_size})")
        self._ready: queue.Queue = queue.Queue(buffer_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_fill, args=(source, stage, self._ready, self._stop), daemon=True,
            name="prefetch",
        )  # fmt: skip
        self._thread.start()

    def __next__(self) -> T:
        """The next staged item (blocks until the thread has one)."""
        item = self._ready.get()
        if isinstance(item, _Raised):
            self._ready.put(item)  # every later call raises it too
            raise item.error
        return item

    def close(self) -> None:
        """Ask the thread to stop (it ends once its current pull returns)."""
        self._stop.set()

    def __del__(self) -> None:
        if hasattr(self, "_stop"):  # not when __init__ refused its arguments
            self._stop.set()


def _fill(source: Iterator, stage: Callable | None, ready: queue.Queue, stop: threading.Event):
    """The thread's loop: pull, stage, put; until stopped, exhausted or failed."""
    try:
        while not stop.is_set():
            item = next(source)
            item = stage(item) if stage else item
            while not stop.is_set():
                try:
                    ready.put(item, timeout=_PUT_WAIT_S)
                    break
                except queue.Full:
                    continue
    except BaseException as error:  # StopIteration included: the consumer sees it
        ready.put(_Raised(error))


def stacked(batches: Iterator[ReplayBatch], n: int) -> Iterator[ReplayBatch]:
    """Groups of ``n`` batches as one, every field with a leading axis of ``n``."""
    while True:
        group = [next(batches) for _ in range(n)]
        yield ReplayBatch(
            sequences={k: np.stack([b.sequences[k] for b in group]) for k in group[0].sequences},
            keys=np.stack([b.keys for b in group]),
            weights=np.stack([b.weights for b in group]),
        )


def learner_batches(
    dataset: Iterator[ReplayBatch], updates_per_call: int = 1, prefetch: int = 2
) -> Iterator[ReplayBatch]:
    """What the learner consumes: ``dataset``'s batches, stacked and staged ahead.

    Stacked ``updates_per_call`` at a time when above 1, and staged on the device
    ``prefetch`` calls ahead by a thread (0: no thread).
    """
    if updates_per_call < 1:
        raise ValueError(f"updates_per_call must be at least 1 (got {updates_per_call})")
    batches = stacked(dataset, updates_per_call) if updates_per_call > 1 else dataset
    return Prefetcher(batches, prefetch, stage=on_device) if prefetch else batches


def on_device(batch: ReplayBatch) -> ReplayBatch:
    """``batch`` with its sequences and weights copied to the default device (keys stay)."""
    import jax

    staged = jax.device_put((batch.sequences, batch.weights))
    return dataclasses.replace(batch, sequences=staged[0], weights=staged[1])
