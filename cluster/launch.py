"""The distributed runner's entry point: a Ray runtime, a supervisor, stop signals.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mallocmuzero.cluster.package_shipping import stage_package
from mallocmuzero.cluster.runtime import (
    kill_descendants,
    start_ray,
    stop_signals_reach_the_driver_only,
)
from mallocmuzero.cluster.supervisor import RunFailedError, Supervisor
from mallocmuzero.configs.schema import ExperimentConfig

__all__ = ["RunFailedError", "train_distributed"]


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
