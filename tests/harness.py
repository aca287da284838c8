"""What the tests share: real ``mallocmuzero train`` processes, default settings."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLI = [str(BIN / "mallocmuzero")]
# One JAX compilation cache for a whole test session (private to it): the tests and every
# run they start compile the same smoke networks and shipped agent, so only the first
# pays for compiling. The process that loads this module first (pytest's, before
# pytest-xdist starts its workers) makes it and removes it at exit; the workers inherit it.
CACHE_VARIABLE = "MALLOCMUZERO_TEST_JAX_CACHE"
if CACHE_VARIABLE not in os.environ:
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="mallocmuzero-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ[CACHE_VARIABLE], ignore_errors=True)
JAX_CACHE = os.environ[CACHE_VARIABLE]
JAX_CACHE_SETTINGS = {
    "JAX_COMPILATION_CACHE_DIR": JAX_CACHE,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
}
ENV = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "RAY_AUTH_MODE": "disabled",
    "PYTHONUNBUFFERED": "1",
    **JAX_CACHE_SETTINGS,
}

# The marks of the tests that start Ray runtimes. `make test` runs two pytest-xdist
# workers: these tests form one group, run in turn on one worker, and every other test
# forms another (conftest.py), run on the other worker; the kernels the real runs'
# processes load are compiled once, first. (Each Ray runtime a test starts is its own and
# is stopped through its own processes, never with `ray stop`; the real runs are one
# group because a third worker beside them on two cores made the suite slower: 10 min
# 50 s against 9 min 3 s.)
RAY_GROUP, UNIT_GROUP = "ray-runtime", "unit"
REAL_RUNS = [
    pytest.mark.xdist_group(RAY_GROUP),
    pytest.mark.usefixtures("smoke_kernels_compiled"),
]
# A module of unit tests that runs on the real runs' worker, after them (its file comes
# later), so that both workers end about together: the other unit tests take longer in
# all than the real runs (414 s against 323 s of test time at stop 32).
AFTER_REAL_RUNS = pytest.mark.xdist_group(RAY_GROUP)

TAGS = {
    "loss/total", "loss/policy", "loss/value", "loss/reward", "learner/learning_rate",
    "learner/grad_norm", "learner/steps_per_s", "learner/replay_wait_fraction",
    "self_play/steps_per_s", "self_play/simulations_per_s", "self_play/actor0/steps_per_s",
    "self_play/actor1/simulations_per_s", "replay/size", "replay/samples_per_insert",
    "policy_lag", "self_play/episode_return", "eval/gain/mean",
}  # fmt: skip


def default_optimizer(**changes):
    """The default config's optimizer settings with ``changes`` (learner section keys)."""
    from mallocmuzero.cluster.components import optimizer_config
    from mallocmuzero.configs.schema import ExperimentConfig, with_values

    learner = {f"learner.{key}": value for key, value in changes.items()}
    return optimizer_config(with_values(ExperimentConfig(), learner))


def smoke_settings(suite: Path) -> list[str]:
    """``--set`` options of every real test run: the smoke config on ``suite``, quick to
    sample from, a progress line a second, and a replay table small enough that a
    checkpoint or a restore of it takes about a second."""
    settings = [f"workloads.dir={suite}", "replay.min_size_to_sample=32",
                "run.log_interval_s=1.0", "replay.max_size=1000"]  # fmt: skip
    return [arg for setting in settings for arg in ("--set", setting)]


def train_args(run: Path, suite: Path, *extra: str) -> list[str]:
    """``mallocmuzero train`` of the smoke config into ``run``, with :func:`smoke_settings`."""
    return [*CLI, "train", "--config", "configs/smoke.py", "--run-dir", str(run),
            *smoke_settings(suite), *extra]  # fmt: skip


CHECKPOINT_LINE = r"\[train\] checkpoint (step_\d+): \d+ replay items"


def stop_checkpoints(text: str, signal_name: str) -> tuple[list[str], str | None]:
    """From a run's output: the checkpoints logged before its stop line for
    ``signal_name``, and the one logged after it (None without that line or checkpoint)."""
    before, stopped, after = text.partition(f"[train] stopping: signal {signal_name}")
    written = re.search(CHECKPOINT_LINE, after)
    return re.findall(CHECKPOINT_LINE, before), written.group(1) if stopped and written else None


def checkpoint_meta(folder: Path) -> dict:
    """A run checkpoint's meta.json."""
    return json.loads((folder / "meta.json").read_text())


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run exited with {proc.returncode} before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def actors_file(run: Path, count: int = 2) -> list[dict] | None:
    """The actors' pids and nodes, once all ``count`` actors have reported."""
    path = run / "actors.json"
    actors = json.loads(path.read_text()) if path.exists() else []
    return actors if len(actors) == count else None


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step_*"))


def process_tree(pid: int) -> set[int]:
    import psutil

    root = psutil.Process(pid)
    return {pid, *(p.pid for p in root.children(recursive=True))}
