"""The runners' entry points: a runtime (Ray, or this process), a supervisor, stop signals.

Roles (each a plain class of its folder) run as Ray actors started by
``cluster/roles.py``; ``cluster/supervisor.py`` runs the event loop; ``cluster/runtime.py``
starts or joins the Ray runtime. The first SIGTERM or SIGINT stops the run with a final
checkpoint, a second one aborts at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mallocmuzero.cluster.local_runtime import LocalRuntime
from mallocmuzero.cluster.package_shipping import stage_package
from mallocmuzero.cluster.runtime import (
    kill_descendants,
    start_ray,
    stop_signals_reach_the_driver_only,
)
from mallocmuzero.cluster.supervisor import RunFailedError, Supervisor
from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.env.workload import Workload

__all__ = ["RunFailedError", "train_distributed", "train_sync"]


def _signal_handler(supervisor: Supervisor, progress: Callable[[str], None]):
    """The first SIGTERM or SIGINT asks for a stop with a checkpoint; a second one aborts."""

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if supervisor.stop_reason is not None and supervisor.stop_reason.startswith("signal"):
            progress(f"[train] second stop signal ({name}): aborting without a checkpoint")
            sys.stdout.flush()
            kill_descendants()  # a local runtime's processes; a cluster's actors die with us
            os._exit(128 + signum)
        supervisor.stop_reason = f"signal {name}"

    return on_signal


def train_distributed(
    config: ExperimentConfig,
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
    previous = {}
    try:
        with stop_signals_reach_the_driver_only(local=not address):
            start_ray(config, address, stage_package(scratch) if address else None)
            # After ray.init, which installs its own SIGTERM handler (exit at once): a stop
            # signal must let the supervisor write its final checkpoint first.
            handler = _signal_handler(supervisor, progress)
            previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        supervisor.start()
        return supervisor.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if ray.is_initialized():
            supervisor.shutdown()
            ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)


def train_sync(
    config: ExperimentConfig,
    run_dir: str,
    workloads: list[Workload] | None = None,
    progress: Callable[[str], None] = print,
    runtime: LocalRuntime | None = None,
) -> dict[str, Any]:
    """The same supervisor with every role on a thread of this process (no Ray).

    Checkpoints, resume, the evaluator, TensorBoard and stop signals work as in
    :func:`train_distributed`; Reverb's own rate limiter holds the samples per insert.
    ``workloads`` replace the config's folder's; ``runtime`` may inject failures (tests).
    Returns the run's counters, its last checkpoint and the final parameters.
    """
    runtime = runtime or LocalRuntime()
    supervisor = Supervisor(config, run_dir, progress, runtime=runtime, workloads=workloads)
    handler = _signal_handler(supervisor, progress)
    in_main = threading.current_thread() is threading.main_thread()
    previous = (
        {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    )
    try:
        supervisor.start()
        result = supervisor.run()
        return {**result, "params": runtime.get(supervisor.learner.params.remote())}
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        supervisor.shutdown()
        runtime.shutdown()
