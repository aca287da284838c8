"""The distributed runner's checks without a runtime: one-line resource and resume errors,
the fallback past a corrupt checkpoint, a run whose checkpoints cannot restore.

Real Ray runs are elsewhere: crashes, stops and resumes of one run folder in
``test_stop_and_watch.py``; a head node, a second node and ``ray job submit`` in
``test_cluster_job.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mallocmuzero.cluster.run_checkpoint import restore_newest
from mallocmuzero.replay.checkpoint import FILES

from harness import train_args

pytest.importorskip("reverb")
pytest.importorskip("ray")


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
