"""Launch on a cluster as the README says: a real head node, a second node, ``ray job
submit``, ``ray job stop``.

The head is started with ``ray start --head --block`` from the project's environment (its
``bin`` first on PATH, as after ``source .venv/bin/activate``), on 127.0.0.1 only (Ray's
single-machine mode), with the dashboard's job API. A worker node (its own raylet, object
store and agents) joins it by address and offers the ``selfplay`` resource, so the job's
self-play actor runs there: placement across nodes. ``ray start`` cannot add that node on
loopback (its CLI refuses multi-node in single-machine mode, and otherwise advertises the
external interface), so it is started as Ray's own multi-node test cluster starts its
nodes, on 127.0.0.1. The job uploads the checkout with ``--working-dir .``; the actors
import the package the driver ships (``py_modules``), which the test checks through the
actors' own report of where ``mallocmuzero`` came from. The head is stopped by signalling
its own process group, not with ``ray stop --force``, which would also stop every other
Ray runtime on the machine (a developer's training run).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
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


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (held together while they are chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


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
        "--set", "actors.resources=selfplay", "--set", "run.checkpoint_interval_minutes=0.05",
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
def head_node(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A ``ray start --head --block`` of its own process group; (its GCS address, its
    dashboard's address).

    Leaving the block sends SIGTERM to the group (``--block`` shuts the head's processes
    down with it), then SIGKILL to what is left after a minute."""
    # The agent's HTTP port too: its fixed default (52365) is a port the others may draw.
    port, dashboard, agent = free_ports(3)
    log = (tmp_path / "head.log").open("w")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={agent}",
         "--include-dashboard=true", "--num-cpus=4", "--disable-usage-stats", "--block"],
        cwd=ROOT, env=HEAD_ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for(lambda: job_api_answers(api), 180, "the head's job API", head)
        yield f"127.0.0.1:{port}", api
    finally:
        for sig, grace in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(timeout=grace)
                break
        log.close()


@contextlib.contextmanager
def worker_node(gcs_address: str, resources: dict[str, float], monkeypatch) -> Iterator:
    """A worker node joined to the head at ``gcs_address`` on 127.0.0.1 (Ray's single-machine
    mode), its processes this test's children; killed on exit."""
    from ray._private import ray_constants, services
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # advertise 127.0.0.1
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    params = RayParams(gcs_address=gcs_address, num_cpus=2, resources=resources,
                       include_log_monitor=False, node_manager_port=0, min_worker_port=0,
                       max_worker_port=0, object_store_memory=150 * 2**20)  # fmt: skip
    params.dashboard_agent_listen_port = None  # a free one, not the head agent's
    node = Node(params, head=False, shutdown_at_exit=False, spawn_reaper=True)
    try:
        services.wait_for_node(gcs_address, node.plasma_store_socket_name, 60)
        yield node
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=True)


def job_api_answers(api: str) -> bool:
    """Whether ``ray job list`` reaches the dashboard at ``api``."""
    result = subprocess.run([str(BIN / "ray"), "job", "list", "--address", api], cwd=ROOT,
                            env=HEAD_ENV, capture_output=True, timeout=60)  # fmt: skip
    return result.returncode == 0


def test_ray_job_on_two_nodes_runs_and_ray_job_stop_checkpoints(
    train_only_suite, tmp_path, monkeypatch
):
    """A job runs (progress lines, checkpoints, its self-play actor on the second node and
    on the shipped package), then `ray job stop`: SIGTERM to the driver and a final
    checkpoint.

    One self-play actor and, on training programs alone, no evaluator. (A run that ends
    at its step limit is tested in-process: tests/test_supervisor.py.)"""
    with head_node(tmp_path) as (gcs, api), worker_node(gcs, {"selfplay": 1}, monkeypatch) as node:
        run = tmp_path / "job"
        job = submit(api, run, train_only_suite, max_steps=100000)
        first = wait_for(lambda: checkpoints(run), 600, "the job's first checkpoint")
        text = logs(api, job)
        assert re.search(r"\[train\] step \d+ \| \d+\S* elapsed", text), text[-3000:]
        # The actor ran on the second node, on the package the driver shipped.
        for actor in actors_file(run, count=1):
            assert actor["node"] == node.node_id, actor
            assert Path(actor["package"]).name == "mallocmuzero"
            assert "py_modules_files" in actor["package"], actor
            assert not Path(actor["package"]).resolve().is_relative_to(ROOT)

        ray_cli("job", "stop", "--address", api, job, timeout=120)
        assert wait_status(api, job, {"STOPPED"}, 120) == "STOPPED"
        _, written = stop_checkpoints(logs(api, job), "SIGTERM")
        assert written, logs(api, job)[-3000:]
        # (The first checkpoint itself may be pruned by now: compare by name, step_<step>.)
        assert written >= first[-1].name
        final = run / "checkpoints" / written
        assert checkpoint_problem(final) is None
        assert checkpoint_meta(final)["step"] == int(written.removeprefix("step_"))
