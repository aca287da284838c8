"""Writes the steps of many concurrent games into Reverb as overlapping sequences.

One Reverb ``TrajectoryWriter`` per game slot streams steps as games advance; whenever a
slot's history holds a full window that starts on a multiple of ``period`` and contains at
least one real step, an item referencing that window is created (the data is shared
between overlapping items, not copied). When a game ends, the slot is padded with
absorbing, masked steps so the last windows exist, and the episode is closed.
"""

from __future__ import annotations

import numpy as np

from mallocmuzero.replay.schema import STEP_FIELDS, SequenceSpec, Step
from mallocmuzero.replay.server import TABLE

WAIT_MS = 1_000  # a blocked write looks at ``interrupted`` this often


class SequenceAdder:
    """Adds batched steps (one per game slot) to the replay table.

    Writes block while the table's rate limiter holds inserts (back-pressure); setting
    ``interrupted`` makes a blocked write raise :class:`InterruptedError` within
    ``WAIT_MS``, so a role on a thread can be stopped (a process is killed instead).
    """

    def __init__(
        self,
        client,
        spec: SequenceSpec,
        num_games: int,
        period: int = 1,
        initial_priority: float = 1.0,
        table: str = TABLE,
    ) -> None:
        self.spec = spec
        self.period = period
        self.priority = initial_priority
        self.table = table
        self._writers = [client.trajectory_writer(spec.length) for _ in range(num_games)]
        self._appended = np.zeros(num_games, np.int64)  # steps in the slot's history
        self._real = np.zeros(num_games, np.int64)  # real steps of the current episode
        self._padding = spec.padding_step()
        self.items_created = 0
        self.interrupted = False

    def _append(self, g: int, step: dict[str, np.ndarray]) -> None:
        writer = self._writers[g]
        writer.append(step)
        self._appended[g] += 1
        start = self._appended[g] - self.spec.length
        if start >= 0 and start < self._real[g] and start % self.period == 0:
            window = {k: writer.history[k][-self.spec.length :] for k in STEP_FIELDS}
            writer.create_item(self.table, self.priority, window)
            self.items_created += 1

    def add(self, steps: Step, done: np.ndarray) -> None:
        """Append one step per slot (``steps.field[g]``).

        ``done[g]`` ends slot g's game after this step.
        """
        for g in range(len(self._writers)):
            self._real[g] += 1
            self._append(g, {k: np.asarray(v[g]) for k, v in zip(STEP_FIELDS, steps, strict=True)})
            if done[g]:
                for _ in range(self.spec.length - 1):
                    self._append(g, self._padding)
                self._wait(self._writers[g])  # then ending the episode does not block
                self._writers[g].end_episode(clear_buffers=True)
                self._appended[g] = 0
                self._real[g] = 0

    def _wait(self, writer) -> None:
        """Block until the writer's items are on the server, unless interrupted."""
        import reverb

        while True:
            try:
                writer.flush(timeout_ms=WAIT_MS)
                return
            except reverb.errors.DeadlineExceededError:
                if self.interrupted:
                    raise InterruptedError("replay writes interrupted") from None

    def flush(self) -> None:
        """Block until every created item is on the server."""
        for writer in self._writers:
            self._wait(writer)

    def close(self) -> None:
        """Flush and release the writers."""
        for writer in self._writers:
            writer.end_episode(clear_buffers=True)
            writer.close()
