"""The learner role: the learner core behind a remote Reverb client, with orbax state.

A plain class; the distributed runner wraps it in a Ray actor (``num_gpus=1`` where the
cluster has an accelerator). Its state (parameters, target network, optimizer, RNG and
step) travels to the supervisor, which saves it with orbax on its own node, so a cluster
needs no shared filesystem.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mallocmuzero.learner.learner import Learner
from mallocmuzero.learner.train_state import TrainState
from mallocmuzero.replay.dataset import ReplayBatch, ReplayDataset

LEGACY_KEY = "rng"  # the learner's RNG key, saved in states until the learner dropped it

# (restored state or None, Reverb client) -> the learner core, its replay dataset (which
# takes the priorities back) and the batches it trains on (from that dataset, maybe
# stacked and prefetched: learner/prefetch.py)
LearnerParts = Callable[
    [TrainState | None, Any], tuple[Learner, ReplayDataset, Iterator[ReplayBatch]]
]


def save_train_state(folder: str | Path, state: TrainState) -> None:
    """Write a learner state with orbax into ``folder`` (which must not exist)."""
    import orbax.checkpoint as ocp

    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(Path(folder).resolve(), jax.device_get(state))
    checkpointer.wait_until_finished()


def restore_train_state(folder: str | Path, template: TrainState) -> TrainState:
    """Read a learner state written by :func:`save_train_state`, shaped like ``template``.

    States saved before the learner dropped its unused RNG key (a ``rng`` entry) restore
    too: the key is read and left out.
    """
    import orbax.checkpoint as ocp

    checkpointer, path = ocp.StandardCheckpointer(), Path(folder).resolve()
    if LEGACY_KEY not in checkpointer.metadata(path).tree:
        return checkpointer.restore(path, template)
    legacy = {**template._asdict(), LEGACY_KEY: np.zeros(2, np.uint32)}
    restored = checkpointer.restore(path, legacy)
    restored.pop(LEGACY_KEY)
    return TrainState(**restored)


class LearnerService:
    """Trains in calls of a few steps; publishes parameters; saves its state."""

    def __init__(
        self,
        make_parts: LearnerParts,
        replay_address: str,
        state: TrainState | None = None,
    ) -> None:
        import reverb

        state = jax.device_put(state) if state else None
        self._learner, self._dataset, self._batches = make_parts(
            state, reverb.Client(replay_address)
        )

    def current_step(self) -> int:
        """Learner steps taken (restored steps included)."""
        return int(self._learner.state.step)

    def device(self) -> str:
        """The JAX device the learner trains on, and this process's id."""
        return f"{jax.devices()[0]} (pid {os.getpid()})"

    def train(self, num_steps: int) -> dict[str, Any]:
        """Take ``num_steps`` steps, or more to end on a whole stacked batch.

        Returns the mean metrics, the step, the steps taken and the time split
        (``wait_seconds``: blocked on the next batch).
        """
        started, waited, history, first = time.perf_counter(), 0.0, [], self.current_step()
        while self.current_step() - first < num_steps:
            asked = time.perf_counter()
            batch = next(self._batches)  # blocked by the rate limiter or the network
            waited += time.perf_counter() - asked
            metrics, priorities = self._learner.update(batch)
            self._dataset.update_priorities(batch.keys.ravel(), priorities.ravel())
            history.append(metrics)
        return {
            "metrics": {k: float(np.mean([m[k] for m in history])) for k in history[0]},
            "step": self.current_step(),
            "steps": self.current_step() - first,
            "seconds": time.perf_counter() - started,
            "wait_seconds": waited,
        }

    def params(self) -> Any:
        """The current parameters as host arrays (to publish through the object store)."""
        return jax.device_get(self._learner.params)

    def state(self) -> TrainState:
        """The whole learner state as host arrays (for checkpoints)."""
        return jax.device_get(self._learner.state)
