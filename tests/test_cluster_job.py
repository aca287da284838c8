"""Launch on a cluster as the README says: a real head node, ``ray job submit``, ``ray job stop``.

The head is started with ``ray start --head --block`` from the project's environment (its
``bin`` first on PATH, as after ``source .venv/bin/activate``), on 127.0.0.1 only (Ray's
single-machine mode), with the dashboard's job API. The jobs upload the checkout with
``--working-dir .``; the actors import the package the driver ships (``py_modules``),
which the test checks through the actors' own report of where ``mallocmuzero`` came from.
The head is stopped by signalling its own process group, not with ``ray stop --force``,
which would also stop every other Ray runtime on the machine (a developer's training run).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mallocmuzero.cluster.run_checkpoint import checkpoint_problem

from harness import (
    BIN,
    ENV,
    REAL_RUNS,
    ROOT,
    actors_file,
    checkpoint_meta,
    checkpoints,
    smoke_settings,
    stop_checkpoints,
    wait_for,
)

pytest.importorskip("ray")
pytestmark = REAL_RUNS

HEAD_ENV = {
    **ENV,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every service on 127.0.0.1
    "RAY_JOB_STOP_WAIT_TIME_S": "60",  # `ray job stop` waits for the final checkpoint
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli(*args: str, timeout: float = 120) -> str:
    """Run the ``ray`` CLI; its output without terminal colour codes."""
    result = subprocess.run([str(BIN / "ray"), *args], cwd=ROOT, env=HEAD_ENV, text=True,
                            capture_output=True, timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


# What the job API answers while the head's dashboard agent is still starting (on a busy
# machine, for a while after the API itself answers): the submission may be tried again.
AGENT_NOT_READY = "No available agent to submit job"


def submit(api: str, run: Path, suite: Path, max_steps: int, wait_s: float = 180) -> str:
    """``ray job submit --working-dir .`` of a smoke run; the job's id.

    Tried again for up to ``wait_s`` while the head's agent is not ready, as a user would."""
    args = [
        "job", "submit", "--address", api, "--working-dir", ".", "--no-wait", "--",
        "mallocmuzero", "train", "--config", "configs/smoke.py", "--run-dir", str(run),
        "--max-steps", str(max_steps), *smoke_settings(suite), "--set", "actors.num_actors=1",
        "--set", "run.checkpoint_interval_minutes=0.05",
    ]  # fmt: skip
    deadline = time.monotonic() + wait_s
    while True:
        result = subprocess.run([str(BIN / "ray"), *args], cwd=ROOT, env=HEAD_ENV, text=True,
                                capture_output=True, timeout=120)  # fmt: skip
        out = result.stdout + result.stderr
        if result.returncode == 0 or AGENT_NOT_READY not in out or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert result.returncode == 0, out[-3000:]
    return re.search(r"raysubmit_\w+", out).group(0)


def status(api: str, job: str) -> str:
    """PENDING, RUNNING, ...; the CLI words a finished job differently (``Job 'x' stopped``)."""
    out = ray_cli("job", "status", "--address", api, job)
    found = re.search(r"Status for job '\w+': (\w+)", out) or re.search(
        r"Job '\w+' (?:was )?(succeeded|failed|stopped)", out
    )
    assert found, out[-2000:]
    return found.group(1).upper()


def logs(api: str, job: str) -> str:
    return ray_cli("job", "logs", "--address", api, job)


def wait_status(api: str, job: str, wanted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = status(api, job)
        if now in wanted or now == "FAILED":
            return now
        time.sleep(2)
    raise AssertionError(f"job {job} still {now} after {timeout:.0f} s:\n{logs(api, job)[-3000:]}")


@contextlib.contextmanager
def head_node(tmp_path: Path):
    """A ``ray start --head --block`` of its own process group; its dashboard's address.

    Leaving the block sends SIGTERM to the group (``--block`` shuts the head's processes
    down with it), then SIGKILL to what is left after a minute."""
    port, dashboard = free_port(), free_port()
    log = (tmp_path / "head.log").open("w")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dashboard}", "--include-dashboard=true", "--num-cpus=4",
         "--disable-usage-stats", "--block"],
        cwd=ROOT, env=HEAD_ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for(lambda: job_api_answers(api), 180, "the head's job API", head)
        yield api
    finally:
        for sig, grace in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(timeout=grace)
                break
        log.close()


def job_api_answers(api: str) -> bool:
    """Whether ``ray job list`` reaches the dashboard at ``api``."""
    result = subprocess.run([str(BIN / "ray"), "job", "list", "--address", api], cwd=ROOT,
                            env=HEAD_ENV, capture_output=True, timeout=60)  # fmt: skip
    return result.returncode == 0


def test_ray_job_submit_runs_and_ray_job_stop_checkpoints(train_only_suite, tmp_path):
    """A job runs (progress lines, checkpoints, the actors on the shipped package), then
    `ray job stop`: SIGTERM to the driver and a final checkpoint.

    One self-play actor and, on training programs alone, no evaluator. (A run that ends
    at its step limit is tested in-process: tests/test_supervisor.py.)"""
    with head_node(tmp_path) as api:
        run = tmp_path / "job"
        job = submit(api, run, train_only_suite, max_steps=100000)
        first = wait_for(lambda: checkpoints(run), 600, "the job's first checkpoint")
        text = logs(api, job)
        assert re.search(r"\[train\] step \d+ \| \d+\S* elapsed", text), text[-3000:]
        # The actors ran the package the driver shipped, not this checkout.
        for actor in actors_file(run, count=1):
            assert Path(actor["package"]).name == "mallocmuzero"
            assert "py_modules_files" in actor["package"], actor
            assert not Path(actor["package"]).resolve().is_relative_to(ROOT)

        ray_cli("job", "stop", "--address", api, job, timeout=120)
        assert wait_status(api, job, {"STOPPED"}, 120) == "STOPPED"
        _, written = stop_checkpoints(logs(api, job), "SIGTERM")
        assert written, logs(api, job)[-3000:]
        assert written >= first[-1].name
        final = run / "checkpoints" / written
        assert checkpoint_problem(final) is None
        assert checkpoint_meta(final)["step"] >= checkpoint_meta(first[-1])["step"]
