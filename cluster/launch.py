"""The distributed runner: Ray actors for every role, supervised from the driver.

Roles (each a plain class of its folder, wrapped here in a Ray actor with honest
resources): one Reverb replay server (pinned to the driver's node, so its checkpoints
land beside the run), N self-play actors, one learner (a GPU where the cluster has one)
and one evaluator. The supervisor loop keeps exactly one call in flight per role (bounded
work; Reverb's rate limiter holds the sample-to-insert ratio and applies back-pressure),
hands every self-play call the newest published parameters, restarts self-play and
evaluator actors that die, stops cleanly when the learner or replay fails, logs to
TensorBoard, checkpoints every few minutes and on SIGTERM or Ctrl-C, and resumes from the
newest valid checkpoint of the run folder.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from mallocmuzero.actors.evaluator import EvaluatorService
from mallocmuzero.actors.service import SelfPlayService, thread_limits
from mallocmuzero.actors.workload_sampler import load_split
from mallocmuzero.agent.checkpoint import save_checkpoint
from mallocmuzero.cluster import components, run_checkpoint
from mallocmuzero.cluster.components import (
    agent_network,
    base_workloads,
    observation_spec,
    optimizer_config,
    replay_config,
    sequence_spec,
)
from mallocmuzero.cluster.monitor import TensorBoard
from mallocmuzero.cluster.package_shipping import stage_package
from mallocmuzero.errors import UserError
from mallocmuzero.learner.service import LearnerService, restore_train_state, save_train_state
from mallocmuzero.learner.train_state import init_train_state
from mallocmuzero.replay.service import ReplayService

ACTORS_FILE = "actors.json"  # pid and node of every live self-play actor
SCRATCH = "replay-scratch"  # where the Reverb server writes before a checkpoint moves it


def format_duration(seconds: float) -> str:
    """``1h02m``, ``12m05s`` or ``42s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class RunFailedError(RuntimeError):
    """The learner or the replay server failed; the last checkpoint is intact."""


LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a one-machine runtime on 127.0.0.1


def required_cpus(config: ml_collections.ConfigDict) -> float:
    """CPUs the roles declare: actors, learner, replay server and evaluator."""
    return (
        config.actors.num_actors * config.actors.num_cpus
        + config.learner.num_cpus
        + config.replay.num_cpus
        + config.evaluator.num_cpus
    )


def check_resources(config: ml_collections.ConfigDict, available: dict[str, float]) -> None:
    """Refuse a config the cluster can never place (it would wait forever)."""
    need, have = required_cpus(config), available.get("CPU", 0.0)
    if need > have + 1e-9:
        raise UserError(
            f"the roles need {need:g} CPUs (actors.num_actors x actors.num_cpus + "
            f"learner.num_cpus + replay.num_cpus + evaluator.num_cpus) but the cluster has {have:g}"
        )
    name = config.actors.resources
    if name and available.get(name, 0.0) < config.actors.num_actors:
        raise UserError(
            f"actors.resources={name!r}: the cluster offers {available.get(name, 0.0):g} "
            f"units of {name!r}, {config.actors.num_actors} actors need one each"
        )


def start_ray(
    config: ml_collections.ConfigDict, address: str | None, package: Path | None = None
) -> None:
    """Join the cluster at ``address``, or start a local runtime bound to 127.0.0.1.

    On a cluster, ``package`` (the driver's staged ``mallocmuzero``) becomes the job's
    ``py_modules``, merged with a ``ray job submit`` job's own runtime environment.

    For a local runtime, Ray's single-machine mode makes the node advertise 127.0.0.1, so
    the GCS, raylet, object manager and every worker listen on loopback only (Ray reads the
    switch when it is imported; the module constant is set too in case it already was).
    A local runtime declares the machine's cores, or the roles' total with a warning when
    the config asks for more (the roles then share the cores).
    """
    if not address:
        os.environ[LOCAL_ONLY_ENV] = "0"
    import ray
    from ray._private import ray_constants

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address:
        try:
            runtime_env = {"py_modules": [str(package)]} if package else None
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserError(f"--address {address}: cannot join the Ray cluster ({exc})") from None
    else:
        ray_constants.ENABLE_RAY_CLUSTER = False
        cores, need = os.cpu_count() or 1, required_cpus(config)
        if need > cores:
            print(
                f"mallocmuzero: warning: the roles declare {need:g} CPUs on a {cores}-core "
                "machine; they will share the cores",
                file=sys.stderr,
            )
        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=max(cores, math.ceil(need)))
    check_resources(config, ray.cluster_resources())


class Supervisor:
    """Starts, feeds, watches, checkpoints and stops the roles of one run."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        run_dir: str,
        progress: Callable[[str], None] = print,
    ) -> None:
        import ray

        self.ray = ray
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.stop_reason: str | None = None
        self.counters = collections.Counter()  # self_play_steps, episodes, restarts, ...
        self.returns: collections.deque[float] = collections.deque(maxlen=500)
        self.pending: dict[Any, tuple[str, int]] = {}  # in-flight call -> (role, index)
        self.actor_versions: dict[int, int] = {}
        self.identities: dict[int, dict[str, Any]] = {}  # actor index -> pid and node
        self.learner_step = self.first_step = 0
        self.params_ref = None
        self.replay = self.learner = self.evaluator = None
        self.actors: list[Any] = []
        self.metrics: dict[str, float] = {}
        self.window = collections.Counter()  # figures since the last log line
        self.last_eval: dict[str, float] = {}

    # ----------------------------------------------------------------- roles
    def _options(self, num_cpus: float, env: dict[str, str], **extra: Any) -> dict[str, Any]:
        return {"num_cpus": num_cpus, "runtime_env": {"env_vars": env}, **extra}

    def _start_replay(self, restore_from: Path | None) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.ray.get_runtime_context().get_node_id()
        host = next(n["NodeManagerAddress"] for n in self.ray.nodes() if n["NodeID"] == here)
        remote = self.ray.remote(ReplayService).options(
            **self._options(self.config.replay.num_cpus, {"JAX_PLATFORMS": "cpu"}),
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        )
        self.replay = remote.remote(
            sequence_spec(self.config),
            replay_config(self.config),
            str(self.run_dir / SCRATCH),
            str(restore_from) if restore_from else None,
            host,
        )
        self.replay_address = self.ray.get(self.replay.address.remote())

    def _learner_gpus(self) -> int:
        wanted = int(self.config.learner.num_gpus)
        if wanted >= 0:
            return wanted
        return 1 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0

    def _start_learner(self, state: Any) -> None:
        gpus = self._learner_gpus()
        env = {"JAX_PLATFORMS": ""} if gpus else {
            "JAX_PLATFORMS": "cpu", **thread_limits(self.config.learner.num_cpus)
        }  # fmt: skip
        remote = self.ray.remote(LearnerService).options(
            **self._options(self.config.learner.num_cpus, env, num_gpus=gpus)
        )
        parts = functools.partial(components.learner_parts, self.config)
        self.learner = remote.remote(parts, self.replay_address, state)
        self.learner_step = self.ray.get(self.learner.current_step.remote())
        self.progress(
            f"[train] learner on {self.ray.get(self.learner.device.remote())}, "
            f"step {self.learner_step}; replay at {self.replay_address}"
        )

    def _start_actor(self, index: int) -> Any:
        a = self.config.actors
        extra = {"resources": {a.resources: 1}} if a.resources else {}
        env = {"JAX_PLATFORMS": "cpu", **thread_limits(a.num_cpus)}
        remote = self.ray.remote(SelfPlayService).options(**self._options(a.num_cpus, env, **extra))
        seed = self.config.seed * 1000 + index + 1 + self.counters["actor_restarts"] * 100
        parts = functools.partial(components.self_play_parts, self.config)
        actor = remote.remote(parts, self.base_ref, self.replay_address, index, seed,
                              self.config.search.num_simulations)  # fmt: skip
        self.pending[actor.identity.remote()] = ("identity", index)
        return actor

    def _write_actors_file(self) -> None:
        identities = [self.identities[i] for i in sorted(self.identities)]
        path = self.run_dir / ACTORS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(identities, indent=1))
        tmp.replace(path)

    def _on_identity(self, i: int, ref: Any) -> None:
        try:
            self.identities[i] = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError):
            return  # the actor died starting: its run call fails too and restarts it
        self._write_actors_file()

    def _start_evaluator(self) -> None:
        try:
            heldout = load_split(self.config.workloads.dir, "heldout")
        except UserError:
            heldout = []
        if not heldout:
            self.progress("[train] no held-out workloads: the evaluator is off")
            return
        remote = self.ray.remote(EvaluatorService).options(
            **self._options(
                self.config.evaluator.num_cpus,
                {"JAX_PLATFORMS": "cpu", **thread_limits(self.config.evaluator.num_cpus)},
            )
        )
        parts = functools.partial(components.evaluator_parts, self.config)
        self.evaluator = remote.remote(parts, self.config.evaluator, heldout)

    # --------------------------------------------------------------- restore
    def _restore(self, folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
        template = init_train_state(
            agent_network(self.config),
            optimizer_config(self.config),
            observation_spec(self.config).size,
            self.config.seed,
        )
        state = restore_train_state(folder / "learner", template)
        try:
            self._start_replay(folder / "replay")
            restored = self.ray.get(self.replay.size.remote())
            self._start_learner(state)
        except Exception:
            self._kill(self.replay, self.learner)
            self.replay = self.learner = None
            raise
        self.progress(
            f"[train] resumed from {folder.name}: learner step {self.learner_step}, "
            f"{restored} replay items (checkpoint holds {meta['replay_items']})"
        )
        return meta

    def start(self) -> None:
        """Start every role, resuming from the newest valid checkpoint of the run folder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.run_dir / SCRATCH, ignore_errors=True)  # left by a killed run
        run_checkpoint.remove_partial(self.run_dir)  # a checkpoint an abort left half-written
        base = base_workloads(self.config)
        self.base_ref = self.ray.put(base)
        meta = run_checkpoint.restore_newest(self.run_dir, self._restore)
        if meta is None and next(run_checkpoint.candidates(self.run_dir), None) is not None:
            raise UserError(
                f"{self.run_dir}: none of its checkpoints restores under this config (see the "
                "warnings above); use another --run-dir or the config the run was started with"
            )
        if meta is None:
            self._start_replay(None)
            self._start_learner(None)
        else:
            self.counters.update(meta.get("counters", {}))
        self.actors = [self._start_actor(i) for i in range(self.config.actors.num_actors)]
        self._start_evaluator()
        self.tensorboard = TensorBoard(self.run_dir, start_step=self.learner_step)
        self.tensorboard.config(self.learner_step, self.config)
        self.params_ref = self.learner.params.remote()
        self.version = self.first_step = self.learner_step
        for i in range(len(self.actors)):
            self._submit_actor(i)

    # ------------------------------------------------------------- the loop
    def _submit_actor(self, i: int) -> None:
        ref = self.actors[i].run.remote(
            self.params_ref, self.version, self.config.actors.steps_per_call
        )
        self.pending[ref] = ("actor", i)

    def _learner_busy(self) -> bool:
        return any(role == "learner" for role, _ in self.pending.values())

    def _ensure_learner(self) -> None:
        """Keep one learner call in flight while the run goes on."""
        if self.stop_reason is not None or self._learner_busy():
            return
        steps = self.config.learner.steps_per_call
        if self.config.run.max_steps:
            steps = min(steps, self.config.run.max_steps - self.learner_step)
        if steps > 0:
            self.pending[self.learner.train.remote(steps)] = ("learner", 0)

    def _submit_evaluation(self) -> None:
        if self.evaluator is not None and "evaluator" not in {r for r, _ in self.pending.values()}:
            ref = self.evaluator.evaluate.remote(self.params_ref, self.version)
            self.pending[ref] = ("evaluator", 0)

    def _on_actor(self, i: int, ref: Any) -> None:
        try:
            out = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError) as exc:
            self.counters["actor_restarts"] += 1
            self.progress(f"[train] self-play actor {i} failed ({type(exc).__name__}); restarting")
            self._kill(self.actors[i])
            self.actors[i] = self._start_actor(i)
        else:
            self.actor_versions[i] = out["version"]
            for key in ("steps", "simulations", "episodes"):
                self.counters[f"self_play_{key}"] += out[key]
                self.window[f"actor{i}/{key}"] += out[key]
            self.returns.extend(out["returns"])
        if self.stop_reason is None or self._learner_busy():  # the learner may need data
            self._submit_actor(i)

    def _on_learner(self, ref: Any) -> None:
        try:
            out = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError) as exc:
            raise RunFailedError(f"the learner failed: {type(exc).__name__}: {exc}") from None
        self.learner_step = out["step"]
        self.metrics = out["metrics"]
        self.window["learner_steps"] += out["steps"]
        self.window["learner_seconds"] += out["seconds"]
        self.window["learner_wait_seconds"] += out["wait_seconds"]
        self.params_ref = self.learner.params.remote()
        self.version = self.learner_step

    def _on_evaluator(self, ref: Any) -> None:
        try:
            out = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError) as exc:
            self.progress(f"[train] evaluator failed ({type(exc).__name__}); restarting")
            self._kill(self.evaluator)
            self._start_evaluator()
            return
        self.last_eval = out["scalars"]
        self.tensorboard.scalars(
            self.learner_step, {f"eval/{k}": v for k, v in out["scalars"].items()}
        )
        self.tensorboard.images(self.learner_step, out["images"])

    def _wait(self, timeout: float) -> None:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        for ref in ready:
            self._handle(ref)

    def _handle(self, ref: Any) -> None:
        role, i = self.pending.pop(ref)
        if role == "actor":
            self._on_actor(i, ref)
        elif role == "learner":
            self._on_learner(ref)
        elif role == "identity":
            self._on_identity(i, ref)
        else:
            self._on_evaluator(ref)

    def _replay_stats(self) -> dict[str, float]:
        try:
            return self.ray.get(self.replay.stats.remote(), timeout=60)
        except Exception as exc:
            raise RunFailedError(f"the replay server failed: {type(exc).__name__}: {exc}") from None

    def _time_line(self, running_s: float) -> str:
        """Elapsed time, and the time left when the run is bounded by minutes or steps."""
        c, parts = self.config.run, [f"{format_duration(running_s)} elapsed"]
        left = []
        if c.max_minutes:
            left.append(c.max_minutes * 60 - running_s)
        steps_done = self.learner_step - self.first_step
        if c.max_steps and steps_done > 0:
            left.append((c.max_steps - self.learner_step) * running_s / steps_done)
        if left:
            parts.append(f"{format_duration(max(0.0, min(left)))} left")
        return ", ".join(parts)

    def _log(
        self, elapsed: float, previous: dict[str, float], running_s: float = 0.0
    ) -> dict[str, float]:
        stats = self._replay_stats()
        w, seconds = self.window, max(elapsed, 1e-9)
        inserts = stats["inserts"] - previous.get("inserts", stats["inserts"])
        samples = stats["samples"] - previous.get("samples", stats["samples"])
        scalars = {f"loss/{k[5:]}" if k.startswith("loss/") else f"learner/{k}": v
                   for k, v in self.metrics.items()}  # fmt: skip
        n = len(self.actors)
        per_actor = {i: w[f"actor{i}/steps"] / seconds for i in range(n)}
        scalars.update({f"self_play/actor{i}/steps_per_s": v for i, v in per_actor.items()})
        scalars.update({
            f"self_play/actor{i}/simulations_per_s": w[f"actor{i}/simulations"] / seconds
            for i in range(n)
        })  # fmt: skip
        total = sum(per_actor.values())
        scalars["self_play/steps_per_s"] = total
        scalars["self_play/simulations_per_s"] = total * self.config.search.num_simulations
        scalars["learner/steps_per_s"] = w["learner_steps"] / seconds
        scalars["learner/replay_wait_fraction"] = w["learner_wait_seconds"] / max(
            w["learner_seconds"], 1e-9
        )
        scalars["replay/size"] = stats["size"]
        if inserts > 0:
            scalars["replay/samples_per_insert"] = samples / inserts
        if self.actor_versions:
            scalars["policy_lag"] = self.learner_step - float(
                np.mean(list(self.actor_versions.values()))
            )
        if self.returns:
            scalars["self_play/episode_return"] = float(np.mean(self.returns))
        self.tensorboard.scalars(self.learner_step, scalars)
        self.tensorboard.flush()
        self.progress(
            f"[train] step {self.learner_step} | {self._time_line(running_s)} | "
            f"self-play {total:,.0f} steps/s ({n} actors) | "
            f"replay {stats['size']:,.0f} items, {scalars.get('replay/samples_per_insert', 0):.2f} "
            f"samples/insert | lag {scalars.get('policy_lag', 0):.0f} | return "
            f"{scalars.get('self_play/episode_return', 0):.4f} | loss "
            f"{self.metrics.get('loss/total', float('nan')):.4f}" + self._eval_line()
        )
        self.window.clear()
        return stats

    def _eval_line(self) -> str:
        """The last evaluation's mean gain over msa (and on its large programs)."""
        if not self.last_eval:
            return ""
        line = f" | eval gain/msa {self.last_eval['gain/mean']:+.2%}"
        if "gain/large_mean" in self.last_eval:
            line += f" (large {self.last_eval['gain/large_mean']:+.2%})"
        return line

    def checkpoint(self) -> Path:
        """Save learner, replay and counters under the learner's step (learner idle)."""
        state = self.ray.get(self.learner.state.remote())
        step = int(state.step)
        spec = observation_spec(self.config)
        agent_meta = {"learner_steps": step, "observation_size": spec.size,
                      "num_actions": spec.num_actions,
                      "self_play_steps": self.counters["self_play_steps"],
                      "self_play_episodes": self.counters["self_play_episodes"]}  # fmt: skip
        counts = {}

        def parts(folder: Path) -> dict[str, Any]:
            save_train_state(folder / "learner", state)
            counts["replay_items"] = self.ray.get(
                self.replay.checkpoint.remote(str(folder / "replay"))
            )
            save_checkpoint(folder / "agent", state.params, self.config, agent_meta)
            return {**counts, "counters": dict(self.counters), "time": time.time()}

        folder = run_checkpoint.write_checkpoint(
            self.run_dir, step, parts, keep=self.config.run.keep_checkpoints
        )
        save_checkpoint(self.run_dir / "checkpoint", state.params, self.config, agent_meta)
        self.progress(f"[train] checkpoint {folder.name}: {counts['replay_items']} replay items")
        return folder

    def _kill(self, *handles: Any) -> None:
        for handle in handles:
            if handle is not None:
                try:
                    self.ray.kill(handle, no_restart=True)
                except Exception:  # already gone
                    pass

    def run(self) -> dict[str, Any]:
        """The supervisor loop until max steps, max minutes or a stop signal.

        A checkpoint (and the final one) waits for the learner's call in flight to end
        while self-play goes on: the learner may be waiting for replay data.
        """
        c = self.config.run
        started = last_log = last_ckpt = last_eval = time.monotonic()
        previous = self._replay_stats()
        checkpoint_due = False
        while True:
            self._wait(timeout=0.5)
            now = time.monotonic()
            if self.stop_reason is None and c.max_steps and self.learner_step >= c.max_steps:
                self.stop_reason = f"reached {c.max_steps} learner steps"
            elif self.stop_reason is None and c.max_minutes and now - started >= c.max_minutes * 60:
                self.stop_reason = f"reached {c.max_minutes:g} minutes"
            if now - last_log >= c.log_interval_s:
                previous = self._log(now - last_log, previous, now - started)
                last_log = now
            if now - last_eval >= self.config.evaluator.interval_s:
                self._submit_evaluation()
                last_eval = now
            checkpoint_due |= now - last_ckpt >= c.checkpoint_interval_minutes * 60
            if self._learner_busy():
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
        self._kill(*self.actors, self.evaluator, self.learner)
        if self.replay is not None:
            try:
                self.ray.get(self.replay.stop.remote(), timeout=30)
            except Exception:
                pass
            self._kill(self.replay)
        if getattr(self, "tensorboard", None) is not None:
            self.tensorboard.close()


def kill_descendants() -> None:
    """SIGKILL every process this one started, directly or not (a local Ray runtime)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()


@contextlib.contextmanager
def stop_signals_reach_the_driver_only(local: bool) -> Iterator[None]:
    """Start a local runtime with SIGTERM blocked, so its processes never receive it.

    Process managers (systemd, Slurm, ``timeout``, ``docker stop``) signal the run's whole
    process group, and the embedded runtime's processes (GCS, raylet, then the workers the
    raylet forks) sit in that group. A blocked signal stays blocked across fork and exec,
    so they ignore the group's SIGTERM (Ray already blocks SIGINT there), and the driver
    stops them after its final checkpoint; they still die with the driver (Ray's
    kernel-level fate sharing). The driver's own mask is restored on exit, after its
    handlers are installed, so a signal that arrived meanwhile is handled, not lost.
    """
    if not local:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def train_distributed(
    config: ml_collections.ConfigDict,
    run_dir: str,
    address: str | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run training on Ray (local runtime by default, or the cluster at ``address``).

    The first SIGTERM or SIGINT stops the run with a final checkpoint (exit code 0 from the
    CLI); a second one aborts at once with exit code 128 + the signal's number, keeping
    the previous checkpoint (checkpoints are renamed into place only once complete).
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None  # set inside a Ray job
    supervisor = Supervisor(config, run_dir, progress)
    scratch = Path(tempfile.mkdtemp(prefix="mallocmuzero-ship-"))

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if supervisor.stop_reason is not None and supervisor.stop_reason.startswith("signal"):
            progress(f"[train] second stop signal ({name}): aborting without a checkpoint")
            sys.stdout.flush()
            kill_descendants()  # a local runtime's processes; a cluster's actors die with us
            os._exit(128 + signum)
        supervisor.stop_reason = f"signal {name}"

    previous = {}
    try:
        with stop_signals_reach_the_driver_only(local=not address):
            start_ray(config, address, stage_package(scratch) if address else None)
            # After ray.init, which installs its own SIGTERM handler (exit at once): a stop
            # signal must let the supervisor write its final checkpoint first.
            previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        supervisor.start()
        return supervisor.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if ray.is_initialized():
            supervisor.shutdown()
            ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
