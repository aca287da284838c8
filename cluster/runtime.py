"""The Ray runtime of a run: a local one on 127.0.0.1, or a cluster joined by address.

Also what keeps a process manager's stop signal for the driver alone (the local runtime
is started with SIGTERM blocked) and the hard abort of a second signal.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from mallocmuzero.configs.schema import ExperimentConfig
from mallocmuzero.errors import UserError

LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a one-machine runtime on 127.0.0.1
# The GCS keeps the events of the last this-many tasks (Ray's default, 100,000, lets it
# grow for hours: every actor call is a task). Read when the local runtime starts.
TASK_EVENTS_ENV, TASK_EVENTS_KEPT = "RAY_task_events_max_num_task_in_gcs", "1000"


def required_cpus(config: ExperimentConfig) -> float:
    """CPUs the roles declare: actors, learner, replay server and evaluator."""
    return (
        config.actors.num_actors * config.actors.num_cpus
        + config.learner.num_cpus
        + config.replay.num_cpus
        + config.evaluator.num_cpus
    )


def check_resources(config: ExperimentConfig, available: dict[str, float]) -> None:
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


def start_ray(config: ExperimentConfig, address: str | None, package: Path | None = None) -> None:
    """Join the cluster at ``address``, or start a local runtime bound to 127.0.0.1.

    On a cluster, ``package`` (the driver's staged ``mallocmuzero``) becomes the job's
    ``py_modules``, merged with a ``ray job submit`` job's own runtime environment.

    For a local runtime, Ray's single-machine mode makes the node advertise 127.0.0.1, so
    the GCS, raylet, object manager and every worker listen on loopback only (Ray reads the
    switch when it is imported; the module constant is set too in case it already was).
    A local runtime declares the machine's cores, or the roles' total with a warning when
    the config asks for more (the roles then share the cores), and keeps the events of
    only the last ``TASK_EVENTS_KEPT`` tasks (unless ``TASK_EVENTS_ENV`` says otherwise).
    """
    if not address:
        os.environ[LOCAL_ONLY_ENV] = "0"
        os.environ.setdefault(TASK_EVENTS_ENV, TASK_EVENTS_KEPT)
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
        ray.init(address="local", include_dashboard=False, log_to_driver=False,
                 num_cpus=max(cores, math.ceil(need)))  # fmt: skip
    check_resources(config, ray.cluster_resources())


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
