"""The training loop's logic on the in-process runtime: crashes, checkpoints, resume, stop.

The same :class:`Supervisor` as a Ray run, its roles on threads of this process
(:class:`LocalRuntime`), failures injected into a role's calls. What only Ray can show
(process signals, loopback binding, two nodes, ``ray job submit``) stays in the real runs.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import threading
import time

import pytest

from mallocmuzero.cluster import run_checkpoint
from mallocmuzero.cluster.launch import train_sync
from mallocmuzero.cluster.local_runtime import LocalRuntime
from mallocmuzero.cluster.supervisor import RunFailedError
from mallocmuzero.configs.loader import load_config

from harness import checkpoint_meta, smoke_settings


def smoke(suite, *changes: str):
    """The smoke config on ``suite`` with the real runs' settings and ``changes``."""
    settings = smoke_settings(suite)[1::2]  # the values of the --set pairs
    return load_config("configs/smoke.py", [*settings, *changes])


class Faults:
    """Fail the ``nth`` call (from 1) of ``role.method``, once; count every call."""

    def __init__(self, role: str, method: str, nth: int) -> None:
        self.target, self.nth = (role, method), nth
        self.calls: collections.Counter = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, role: str, method: str) -> bool:
        with self.lock:
            self.calls[(role, method)] += 1
            return (role, method) == self.target and self.calls[(role, method)] == self.nth


def test_a_crashed_actor_restarts_and_the_run_resumes_from_its_checkpoint(small_suite, tmp_path):
    run, lines = tmp_path / "run", []
    faults = Faults("SelfPlayService", "run", 3)
    config = smoke(small_suite, "run.max_steps=30", "run.snapshot_minutes=(0.001,)",
                   "actors.num_actors=1")  # fmt: skip
    first = train_sync(config, str(run), progress=lines.append, runtime=LocalRuntime(faults))
    text = "\n".join(lines)
    assert "[train] self-play actor 0 failed (RayActorError); restarting" in text
    assert first["actor_restarts"] == 1 and first["learner_steps"] == 30
    assert faults.calls[("SelfPlayService", "run")] > 3  # the new actor played on
    newest = next(run_checkpoint.candidates(run))
    assert run_checkpoint.checkpoint_problem(newest) is None
    held = checkpoint_meta(newest)["replay_items"]
    assert held > 0 and checkpoint_meta(newest)["counters"]["actor_restarts"] == 1
    kept = run / "snapshots" / "minute_0000.0"  # kept once 0.06 s of training had passed
    snapshot = json.loads((kept / "meta.json").read_text())
    assert snapshot["train_seconds"] >= 0.06 and (kept / "params.msgpack").is_file()
    assert 0 <= snapshot["learner_steps"] <= first["learner_steps"]  # any, on a busy machine

    lines.clear()
    more = smoke(small_suite, "run.max_steps=50", "actors.num_actors=1")
    second = train_sync(more, str(run), progress=lines.append)
    text = "\n".join(lines)
    assert f"[train] resumed from {newest.name}: learner step 30, {held} replay items" in text
    assert second["learner_steps"] == 50
    assert second["actor_restarts"] == 1  # the counters carried over
    assert second["train_seconds"] > first["train_seconds"]

    # A checkpoint carried without its replay (the learner and agent alone) resumes too.
    newest = next(run_checkpoint.candidates(run))
    shutil.rmtree(newest / "replay")
    lines.clear()
    third = train_sync(smoke(small_suite, "run.max_steps=60", "actors.num_actors=1"), str(run),
                       progress=lines.append)  # fmt: skip
    assert f"[train] resumed from {newest.name}: learner step 50, 0 replay items" in "\n".join(
        lines
    )
    assert third["learner_steps"] == 60


def test_a_learner_failure_stops_the_run_with_its_checkpoints_intact(small_suite, tmp_path):
    run = tmp_path / "run"
    train_sync(smoke(small_suite, "run.max_steps=10"), str(run), progress=lambda s: None)
    before = sorted(run_checkpoint.candidates(run))
    faults = Faults("LearnerService", "train", 2)
    with pytest.raises(RunFailedError, match="the learner failed"):
        train_sync(smoke(small_suite, "run.max_steps=40"), str(run), progress=lambda s: None,
                   runtime=LocalRuntime(faults))  # fmt: skip
    after = sorted(run_checkpoint.candidates(run))
    assert after == before  # nothing half-written, nothing lost
    assert all(run_checkpoint.checkpoint_problem(folder) is None for folder in after)


def test_a_stop_signal_ends_with_a_final_checkpoint(small_suite, tmp_path):
    """A first SIGTERM stops the loop at the learner's next idle moment with a final
    checkpoint (sent by the learner's third call, so the handler is in place)."""
    run, lines = tmp_path / "run", []
    calls = Faults("LearnerService", "train", 0)  # counts the calls, fails none

    def signal_on_third_call(role: str, method: str) -> bool:
        calls(role, method)
        if (role, method) == ("LearnerService", "train") and calls.calls[(role, method)] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return False

    config = smoke(small_suite, "run.max_steps=0", "run.max_minutes=10")
    done = train_sync(config, str(run), progress=lines.append,
                      runtime=LocalRuntime(signal_on_third_call))  # fmt: skip
    assert "[train] stopping: signal SIGTERM" in "\n".join(lines)
    assert done["learner_steps"] >= 2 * config.learner.steps_per_call
    final = next(run_checkpoint.candidates(run))
    assert checkpoint_meta(final)["step"] == done["learner_steps"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


def test_an_abort_kills_every_process_the_driver_started(tmp_path):
    """A second stop signal's ``kill_descendants``: the driver's children and theirs (a
    local Ray runtime: GCS, raylet and the workers the raylet forks) are killed."""
    import subprocess
    import sys

    import psutil

    driver = (
        "import subprocess, sys\n"
        "from mallocmuzero.cluster.runtime import kill_descendants\n"
        "child = subprocess.Popen(['sh', '-c', 'sleep 120 & echo $!; wait'],\n"
        "                         stdout=subprocess.PIPE, text=True)\n"
        "print(child.pid, child.stdout.readline().strip(), flush=True)\n"
        "kill_descendants()\n"
        "child.wait()\n"
    )
    out = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    pids = [int(pid) for pid in out.split()]
    assert len(pids) == 2

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 30
    while not all(map(gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(gone, pids)), pids
