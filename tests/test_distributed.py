"""The distributed runner with a real Ray runtime and a real Reverb server.

A real two-node Ray cluster on this machine with a real ``mallocmuzero train`` run on it
(the only test here that starts Ray, in the real runs' group), a run whose
checkpoints cannot restore, one-line resource and resume errors, and the fallback past a
corrupt checkpoint. Crashes, stops and
resumes of one run folder are in ``test_stop_and_watch.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from mallocmuzero.cluster.run_checkpoint import checkpoint_problem, restore_newest
from mallocmuzero.replay.checkpoint import FILES

from harness import (
    ENV,
    RAY_GROUP,
    ROOT,
    actors_file,
    checkpoints,
    stop_checkpoints,
    train_args,
    wait_for,
)

pytest.importorskip("reverb")
pytest.importorskip("ray")


# With the other real runs: on the unit tests' worker its driver (this process) kept
# Ray's SIGTERM handler for the tests after it, and beside the chain it made the suite
# slower (9 min 8 s against 8 min 47 s).
@pytest.mark.xdist_group(RAY_GROUP)
@pytest.mark.usefixtures("smoke_kernels_compiled")
def test_two_node_cluster_places_actors_on_the_second_node(train_only_suite, tmp_path, monkeypatch):
    """A real head node and a real worker node (separate raylets), joined by address; a run
    with one self-play actor, on training programs alone (no evaluator).

    ``ray start`` cannot add a second node on loopback (its CLI refuses multi-node in
    Ray's single-machine mode and otherwise advertises the external interface), so the
    two nodes are started with Ray's own multi-node test cluster, on 127.0.0.1.
    """
    from ray import cluster_utils
    from ray._private import ray_constants

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # nodes advertise 127.0.0.1
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    try:
        worker = cluster.add_node(num_cpus=2, resources={"selfplay": 2})
        cluster.wait_for_nodes()
        run, log = tmp_path / "run", tmp_path / "cluster.log"
        args = train_args(run, train_only_suite, "--max-steps", "100000",
                          "--address", cluster.address, "--set", "actors.resources=selfplay",
                          "--set", "actors.num_actors=1",
                          "--set", "run.checkpoint_interval_minutes=0.05")  # fmt: skip
        env = {**ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        with open(log, "w") as out:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            actors = wait_for(lambda: actors_file(run, count=1), 300, "the actor's pid", proc)
            first = wait_for(lambda: checkpoints(run), 300, "a first checkpoint", proc)[-1]
            proc.send_signal(signal.SIGTERM)  # a stop signal: final checkpoint, exit 0
            assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
        _, written = stop_checkpoints(log.read_text(), "SIGTERM")
        assert written, log.read_text()[-3000:]  # the final checkpoint, after the signal
        final = checkpoints(run)[-1]
        assert final.name == written >= first.name and checkpoint_problem(final) is None
        assert {a["node"] for a in actors} == {worker.node_id}
        assert worker.node_id != cluster.head_node.node_id
    finally:
        cluster.shutdown()


def test_resource_and_resume_errors_are_one_line(tmp_path, capsys):
    from mallocmuzero.cli import main
    from mallocmuzero.cluster.runtime import check_resources, required_cpus
    from mallocmuzero.configs.loader import load_config
    from mallocmuzero.errors import UserError

    config = load_config("configs/smoke.py", ["actors.num_actors=3", "actors.resources=selfplay"])
    assert required_cpus(config) == 3 * 0.5 + 0.5 + 0.25 + 0.25
    with pytest.raises(UserError, match="the roles need 2.5 CPUs .* the cluster has 2"):
        check_resources(config, {"CPU": 2.0, "selfplay": 3.0})
    with pytest.raises(UserError, match="offers 1 units of 'selfplay', 3 actors need one each"):
        check_resources(config, {"CPU": 8.0, "selfplay": 1.0})
    check_resources(config, {"CPU": 2.5, "selfplay": 3.0})

    run = tmp_path / "empty"
    assert main(["train", "--config", "configs/smoke.py", "--run-dir", str(run), "--resume"]) == 2
    assert "holds no checkpoint to resume from" in capsys.readouterr().err
    args = ["train", "--config", "configs/smoke.py", "--run-dir", str(run), "--runner", "sync"]
    assert main([*args, "--address", "127.0.0.1:1"]) == 2
    assert "--address needs the ray runner" in capsys.readouterr().err
    assert not run.exists()


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    def fake(step: int) -> Path:
        folder = tmp_path / "checkpoints" / f"step_{step:09d}"
        (folder / "replay").mkdir(parents=True)
        (folder / "learner").mkdir()
        for name in FILES:
            (folder / "replay" / name).touch()
        (folder / "meta.json").write_text(json.dumps({"step": step}))
        return folder

    fake(10), fake(20)
    newest = fake(30)
    (newest / "replay" / "DONE").unlink()  # a crash mid-write of Reverb's files
    chosen = []
    with pytest.warns(UserWarning, match="step_000000030: skipping corrupt checkpoint"):
        restore_newest(tmp_path, lambda folder, meta: chosen.append(meta["step"]) or meta)
    assert chosen == [20]

    def fails_on_20(folder: Path, meta: dict):
        if meta["step"] == 20:
            raise ValueError("unreadable learner state")
        return meta

    with pytest.warns(UserWarning, match="unreadable learner state"):
        assert restore_newest(tmp_path, fails_on_20)["step"] == 10
    assert restore_newest(tmp_path / "none", fails_on_20) is None


def test_a_run_whose_checkpoints_cannot_restore_is_refused(small_suite, tmp_path, capsys):
    """The CLI refuses with one line (the in-process runner: the supervisor's restore is
    the same on Ray) and leaves the run folder as it was."""
    from mallocmuzero.cli import main

    run = tmp_path / "run"
    broken = run / "checkpoints" / "step_000000005"
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text("{not json")
    args = train_args(run, small_suite, "--max-steps", "10", "--runner", "sync")[1:]
    with pytest.warns(UserWarning, match="skipping corrupt checkpoint \\(unreadable meta.json"):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "none of its checkpoints restores under this config" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000000005"]
