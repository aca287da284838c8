"""The supervisor: one run's event loop over its roles, on Ray or in one process.

It keeps exactly one call in flight per role (bounded work; Reverb's rate limiter holds
the sample-to-insert ratio and applies back-pressure), hands every self-play call the
newest published parameters, restarts only what failed (a self-play or evaluator actor;
a learner or replay failure stops the run with its checkpoints intact), logs to
TensorBoard, checkpoints every few minutes and on a stop, and resumes from the newest
valid checkpoint of the run folder. The runtime is passed in: :mod:`ray`, or
:class:`~mallocmuzero.cluster.local_runtime.LocalRuntime` (every role on a thread of this
process), so one loop serves ``train`` and ``train --runner sync``.
"""

from __future__ import annotations

import collections
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mallocmuzero.agent.checkpoint import save_checkpoint
from mallocmuzero.cluster import components, progress, run_checkpoint
from mallocmuzero.cluster.monitor import TensorBoard
from mallocmuzero.cluster.roles import Role, RoleLauncher
from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.env.workload import Workload
from mallocmuzero.errors import UserError
from mallocmuzero.learner.service import restore_train_state, save_train_state
from mallocmuzero.learner.train_state import init_train_state

ACTORS_FILE = "actors.json"  # pid and node of every live self-play actor
SCRATCH = "replay-scratch"  # where the Reverb server writes before a checkpoint moves it


class RunFailedError(RuntimeError):
    """The learner or the replay server failed; the last checkpoint is intact."""


class Supervisor:
    """Starts, feeds, watches, checkpoints and stops the roles of one run."""

    def __init__(
        self,
        config: ExperimentConfig,
        run_dir: str,
        progress: Callable[[str], None] = print,
        runtime: Any = None,
        workloads: list[Workload] | None = None,
    ) -> None:
        """``runtime``: :mod:`ray` when None; ``workloads`` replace the config's folder's."""
        if runtime is None:
            import ray as runtime

        self.runtime = runtime
        self.roles = RoleLauncher(runtime, config)
        self.workloads = workloads
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.stop_reason: str | None = None
        self.counters = collections.Counter()  # self_play_steps, episodes, restarts, ...
        self.returns: collections.deque[float] = collections.deque(maxlen=500)
        self.pending: dict[Any, tuple[Role, int]] = {}  # in-flight call -> (role, index)
        self.actor_versions: dict[int, int] = {}
        self.identities: dict[int, dict[str, Any]] = {}  # actor index -> pid and node
        self.program_names: list[str] = []  # the training programs, for agent checkpoints
        self.learner_step = self.first_step = 0
        self.params_ref = None
        self.replay = self.learner = self.evaluator = None
        self.actors: list[Any] = []
        self.metrics: dict[str, float] = {}
        self.window = collections.Counter()  # figures since the last log line
        self.last_eval: dict[str, float] = {}
        self.snapshot_due: float | None = None  # the snapshot minute the next checkpoint keeps
        self.snapshots_left: list[float] | None = None  # minutes still to keep, read at start
        self.base_ref = self.replay_address = self.tensorboard = None
        self.version = 0

    # ----------------------------------------------------------------- roles
    def _start_replay(self, restore_from: Path | None) -> None:
        self.replay, self.replay_address = self.roles.replay(self.run_dir / SCRATCH, restore_from)

    def _start_learner(self, state: Any) -> None:
        """Create the learner without waiting: the other roles start while it initialises."""
        self.learner = self.roles.learner(self.replay_address, state)

    def _await_learner(self) -> None:
        self.learner_step = self.runtime.get(self.learner.current_step.remote())
        self.progress(
            f"[train] learner on {self.runtime.get(self.learner.device.remote())}, "
            f"step {self.learner_step}; replay at {self.replay_address}"
        )

    def _start_actor(self, index: int) -> Any:
        seed = self.config.seed * 1000 + index + 1 + self.counters["actor_restarts"] * 100
        actor = self.roles.actor(self.base_ref, self.replay_address, index, seed)
        self.pending[actor.identity.remote()] = (Role.IDENTITY, index)
        return actor

    def _write_actors_file(self) -> None:
        identities = [self.identities[i] for i in sorted(self.identities)]
        path = self.run_dir / ACTORS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(identities, indent=1))
        tmp.replace(path)

    # --------------------------------------------------------------- restore
    def _restore(self, folder: Path, meta: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
        """Start the replay and the learner from ``folder``; (its name, items restored, meta)."""
        template = init_train_state(
            components.agent_network(self.config),
            components.optimizer_config(self.config),
            components.observation_spec(self.config).size,
            self.config.seed,
        )
        state = restore_train_state(folder / "learner", template)
        replay = folder / "replay"
        try:
            self._start_replay(replay if replay.exists() else None)
            restored = self.runtime.get(self.replay.size.remote())
            self._start_learner(state)
        except Exception:
            self.roles.kill(self.replay, self.learner)
            self.replay = self.learner = None
            raise
        return folder.name, restored, meta

    def start(self) -> None:
        """Start every role, resuming from the newest valid checkpoint of the run folder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.run_dir / SCRATCH, ignore_errors=True)  # left by a killed run
        run_checkpoint.remove_partial(self.run_dir)  # a checkpoint an abort left half-written
        (self.run_dir / ACTORS_FILE).unlink(missing_ok=True)  # a previous session's actors
        base = self.workloads or components.base_workloads(self.config)
        self.program_names = [w.name for w in base]
        self.base_ref = self.runtime.put(base)
        resumed = run_checkpoint.restore_newest(self.run_dir, self._restore)
        if resumed is None and next(run_checkpoint.candidates(self.run_dir), None) is not None:
            raise UserError(
                f"{self.run_dir}: none of its checkpoints restores under this config (see the "
                "warnings above); use another --run-dir or the config the run was started with"
            )
        if resumed is None:
            self._start_replay(None)
            self._start_learner(None)
        else:
            self.counters.update(resumed[2].get("counters", {}))
        self.actors = [self._start_actor(i) for i in range(self.config.actors.num_actors)]
        self.evaluator = self.roles.evaluator(self.progress)
        self._await_learner()
        if resumed is not None:
            name, restored, meta = resumed
            held = meta["replay_items"]
            self.progress(f"[train] resumed from {name}: learner step {self.learner_step}, "
                          f"{restored} replay items (checkpoint holds {held})")  # fmt: skip
        self.tensorboard = TensorBoard(self.run_dir, start_step=self.learner_step)
        self.tensorboard.config(self.learner_step, self.config)
        self.params_ref = self.learner.params.remote()
        self.version = self.first_step = self.learner_step
        for i in range(len(self.actors)):
            self._submit_actor(i)

    # ------------------------------------------------------------- the calls
    def _submit_actor(self, i: int) -> None:
        ref = self.actors[i].run.remote(
            self.params_ref, self.version, self.config.actors.steps_per_call
        )
        self.pending[ref] = (Role.ACTOR, i)

    def _busy(self, role: Role) -> bool:
        return any(r is role for r, _ in self.pending.values())

    def _ensure_learner(self) -> None:
        """Keep one learner call in flight while the run goes on."""
        if self.stop_reason is not None or self._busy(Role.LEARNER):
            return
        steps = self.config.learner.steps_per_call
        if self.config.run.max_steps:
            steps = min(steps, self.config.run.max_steps - self.learner_step)
        if steps > 0:
            self.pending[self.learner.train.remote(steps)] = (Role.LEARNER, 0)

    def _submit_evaluation(self) -> None:
        if self.evaluator is not None and not self._busy(Role.EVALUATOR):
            ref = self.evaluator.evaluate.remote(self.params_ref, self.version)
            self.pending[ref] = (Role.EVALUATOR, 0)

    def _get(self, ref: Any) -> tuple[Any, Exception | None]:
        """A finished call's result, or the actor failure that ended it."""
        try:
            return self.runtime.get(ref), None
        except (self.runtime.exceptions.RayActorError, self.runtime.exceptions.RayTaskError) as exc:
            return None, exc

    def _on_identity(self, i: int, ref: Any) -> None:
        identity, failed = self._get(ref)
        if failed is None:  # an actor that died starting fails its run call and restarts
            self.identities[i] = identity
            self._write_actors_file()

    def _on_actor(self, i: int, ref: Any) -> None:
        out, failed = self._get(ref)
        if failed is not None:
            self.counters["actor_restarts"] += 1
            self.progress(
                f"[train] self-play actor {i} failed ({type(failed).__name__}); restarting"
            )
            self.roles.kill(self.actors[i])
            self.actors[i] = self._start_actor(i)
        else:
            self.actor_versions[i] = out["version"]
            for key in ("steps", "simulations", "episodes"):
                self.counters[f"self_play_{key}"] += out[key]
                self.window[f"actor{i}/{key}"] += out[key]
            self.returns.extend(out["returns"])
        if self.stop_reason is None or self._busy(Role.LEARNER):  # the learner may need data
            self._submit_actor(i)

    def _on_learner(self, i: int, ref: Any) -> None:
        out, failed = self._get(ref)
        if failed is not None:
            raise RunFailedError(f"the learner failed: {type(failed).__name__}: {failed}")
        self.learner_step = out["step"]
        self.metrics = out["metrics"]
        self.window["learner_steps"] += out["steps"]
        self.window["learner_seconds"] += out["seconds"]
        self.window["learner_wait_seconds"] += out["wait_seconds"]
        self.params_ref = self.learner.params.remote()
        self.version = self.learner_step

    def _on_evaluator(self, i: int, ref: Any) -> None:
        out, failed = self._get(ref)
        if failed is not None:
            self.progress(f"[train] evaluator failed ({type(failed).__name__}); restarting")
            self.roles.kill(self.evaluator)
            self.evaluator = self.roles.evaluator(self.progress)
            return
        self.last_eval = out["scalars"]
        self.tensorboard.scalars(
            self.learner_step, {f"eval/{k}": v for k, v in out["scalars"].items()}
        )
        self.tensorboard.images(self.learner_step, out["images"])

    def _wait(self, timeout: float) -> None:
        ready, _ = self.runtime.wait(list(self.pending), num_returns=1, timeout=timeout)
        handlers = {Role.ACTOR: self._on_actor, Role.IDENTITY: self._on_identity,
                    Role.LEARNER: self._on_learner, Role.EVALUATOR: self._on_evaluator}  # fmt: skip
        for ref in ready:
            role, i = self.pending.pop(ref)
            handlers[role](i, ref)

    # ------------------------------------------------------- figures and state
    def _replay_stats(self) -> dict[str, float]:
        try:
            return self.runtime.get(self.replay.stats.remote(), timeout=60)
        except Exception as exc:
            raise RunFailedError(f"the replay server failed: {type(exc).__name__}: {exc}") from None

    def _log(
        self, elapsed: float, previous: dict[str, float], running_s: float = 0.0
    ) -> dict[str, float]:
        """Scalars of the interval to TensorBoard and the progress line; the replay stats."""
        stats = self._replay_stats()
        scalars = progress.window_scalars(
            self.window, max(elapsed, 1e-9), len(self.actors),
            self.config.search.num_simulations, self.metrics,
        )  # fmt: skip
        scalars.update(progress.run_scalars(
            stats["size"],
            stats["inserts"] - previous.get("inserts", stats["inserts"]),
            stats["samples"] - previous.get("samples", stats["samples"]),
            self.learner_step, list(self.actor_versions.values()), list(self.returns),
        ))  # fmt: skip
        self.tensorboard.scalars(self.learner_step, scalars)
        self.tensorboard.flush()
        c = self.config.run
        time_text = progress.time_line(
            running_s, c.max_minutes, c.max_steps, self.learner_step, self.first_step
        )
        self.progress(progress.progress_line(
            self.learner_step, time_text, len(self.actors), scalars, self.last_eval
        ))  # fmt: skip
        self.window.clear()
        return stats

    def checkpoint(self) -> Path:
        """Save learner, replay and counters under the learner's step (learner idle)."""
        state = self.runtime.get(self.learner.state.remote())
        step = int(state.step)
        meta = run_checkpoint.agent_meta(
            step, components.observation_spec(self.config),
            self.counters["self_play_steps"], self.counters["self_play_episodes"],
            train_seconds=round(self.counters["train_seconds"], 1),
            training_programs=self.program_names,
        )  # fmt: skip
        counts = {}

        def parts(folder: Path) -> dict[str, Any]:
            save_train_state(folder / "learner", state)
            counts["replay_items"] = self.runtime.get(
                self.replay.checkpoint.remote(str(folder / "replay"))
            )
            save_checkpoint(folder / "agent", state.params, self.config, meta)
            return {**counts, "counters": dict(self.counters), "time": time.time()}

        folder = run_checkpoint.write_checkpoint(
            self.run_dir, step, parts, keep=self.config.run.keep_checkpoints
        )
        save_checkpoint(self.run_dir / "checkpoint", state.params, self.config, meta)
        self.progress(f"[train] checkpoint {folder.name}: {counts['replay_items']} replay items")
        if self.snapshot_due is not None:
            snapshot = self.run_dir / "snapshots" / f"minute_{self.snapshot_due:06.1f}"
            save_checkpoint(snapshot, state.params, self.config, meta)
            self.progress(f"[train] snapshot {snapshot.name} (learner step {step})")
            self.snapshot_due = None
        return folder

    def _snapshot_minute(self, train_seconds: float) -> float | None:
        """The latest snapshot minute passed and not yet kept, or None (no disk reads)."""
        if self.snapshots_left is None:  # once per run: the minutes an earlier session kept
            kept = {p.name for p in (self.run_dir / "snapshots").glob("minute_*")}
            self.snapshots_left = sorted(m for m in self.config.run.snapshot_minutes
                                         if f"minute_{m:06.1f}" not in kept)  # fmt: skip
        passed = [m for m in self.snapshots_left if m * 60 <= train_seconds]
        self.snapshots_left = [m for m in self.snapshots_left if m * 60 > train_seconds]
        return max(passed) if passed else None

    # ------------------------------------------------------------- the loop
    def _stop_due(self, now: float, started: float) -> None:
        c = self.config.run
        if self.stop_reason is None and c.max_steps and self.learner_step >= c.max_steps:
            self.stop_reason = f"reached {c.max_steps} learner steps"
        elif self.stop_reason is None and c.max_minutes and now - started >= c.max_minutes * 60:
            self.stop_reason = f"reached {c.max_minutes:g} minutes"

    def run(self) -> dict[str, Any]:
        """The supervisor loop until max steps, max minutes or a stop signal.

        A checkpoint (and the final one) waits for the learner's call in flight to end
        while self-play goes on: the learner may be waiting for replay data.
        """
        c = self.config.run
        started = last_log = last_ckpt = last_eval = time.monotonic()
        previous = self._replay_stats()
        checkpoint_due = False
        resumed_seconds = self.counters["train_seconds"]
        while True:
            self._wait(timeout=0.5)
            now = time.monotonic()
            self.counters["train_seconds"] = resumed_seconds + now - started
            self._stop_due(now, started)
            if self.snapshot_due is None:
                self.snapshot_due = self._snapshot_minute(self.counters["train_seconds"])
                checkpoint_due |= self.snapshot_due is not None
            if now - last_log >= c.log_interval_s:
                previous = self._log(now - last_log, previous, now - started)
                last_log = now
            if now - last_eval >= self.config.evaluator.interval_s:
                self._submit_evaluation()
                last_eval = now
            checkpoint_due |= now - last_ckpt >= c.checkpoint_interval_minutes * 60
            if self._busy(Role.LEARNER):
                continue
            if self.stop_reason is not None:
                break
            if checkpoint_due:
                self.checkpoint()
                last_ckpt, checkpoint_due = time.monotonic(), False
            self._ensure_learner()
        now = time.monotonic()
        self._log(max(now - last_log, 1e-3), previous, now - started)  # the final step's values
        self.progress(f"[train] stopping: {self.stop_reason}")
        folder = self.checkpoint()
        return {"learner_steps": self.learner_step, "checkpoint": str(folder), **self.counters}

    def shutdown(self) -> None:
        """Stop every role and the replay server."""
        self.roles.kill(*self.actors, self.evaluator, self.learner)
        if self.replay is not None:
            try:
                self.runtime.get(self.replay.stop.remote(), timeout=30)
            except Exception:
                pass
            self.roles.kill(self.replay)
        if self.tensorboard is not None:
            self.tensorboard.close()
