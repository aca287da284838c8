"""The command line end to end on real workloads: build, list, show, solve, validate."""

from __future__ import annotations

import json

import pytest

from mallocmuzero.cli import main
from mallocmuzero.env.workload import load_workload, placeable_peak

from conftest import shared_hlo


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    assert (
        main(
            ["workloads", "build", "--out", str(out), "--only", "mlp_train", "rnn_scan", "--quiet"]
        )
        == 0
    )
    return out


def test_list_and_show(built, capsys):
    assert main(["workloads", "list", str(built)]) == 0
    out = capsys.readouterr().out
    assert "mlp_train" in out and "rnn_scan" in out and "heldout" not in out.split("\n")[1]
    assert (
        main(["workloads", "show", str(built / "rnn_scan.json"), "--capacity-fraction", "0.5"]) == 0
    )
    out = capsys.readouterr().out
    assert "in loops" in out and "msa time" in out


@pytest.mark.parametrize("solver", ["all-slow", "first-fit", "msa", "restarts", "beam", "cpsat"])
def test_solve_then_validate(built, tmp_path, capsys, solver):
    workload = built / "mlp_train.json"
    sol = tmp_path / "sol.json"
    png = tmp_path / "map.png"
    code = main(["solve", str(workload), "--solver", solver, "--capacity-fraction", "0.1",
                 "--time-limit", "3", "--out", str(sol), "--png", str(png)])  # fmt: skip
    assert code == 0
    data = json.loads(sol.read_text())
    w = load_workload(workload)
    assert data["format"] == "mallocmuzero.solution/1"
    assert data["capacity"] == int(placeable_peak(w) * 0.1)
    assert len(data["placements"]) == w.num_buffers
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["validate", str(workload), str(sol)]) == 0
    assert "valid: time" in capsys.readouterr().out
    again = tmp_path / "again.png"
    assert main(["render", str(workload), str(sol), "--png", str(again)]) == 0
    assert again.read_bytes() == png.read_bytes()
    if solver == "cpsat":
        assert "optimal" in data and "bound_time_s" in data


def test_solve_with_beam_over_game_v2(built, tmp_path, capsys):
    workload, sol = built / "mlp_train.json", tmp_path / "sol.json"
    args = ["solve", str(workload), "--solver", "beam", "--capacity-fraction", "0.1",
            "--width", "4", "--out", str(sol)]  # fmt: skip
    assert main([*args, "--pick-candidates", "6", "--pick-encoding", "rules"]) == 0
    assert json.loads(sol.read_text())["solver"] == "beam4-rules6"
    assert main(["validate", str(workload), str(sol)]) == 0
    capsys.readouterr()
    assert main([*args, "--pick-candidates", "10", "--pick-encoding", "rules"]) == 2
    assert capsys.readouterr().err.strip().endswith("rules offers at most 9 rules (got K=10)")


def test_validate_rejects_overlap(built, tmp_path, capsys):
    workload = built / "mlp_train.json"
    sol = tmp_path / "sol.json"
    assert main(["solve", str(workload), "--solver", "msa", "--out", str(sol)]) == 0
    data = json.loads(sol.read_text())
    placed = [p for p in data["placements"] if p["offset"] is not None]
    assert placed, "msa places something at the default capacity"
    w = load_workload(workload)
    pinned = next(int(b) for b, p in zip(w.buffer_ids, w.pinned) if p)
    for p in data["placements"]:
        if p["buffer"] == pinned:
            p["offset"] = 0
    sol.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["validate", str(workload), str(sol)]) == 1
    assert "pinned" in capsys.readouterr().err


def test_import_hlo_and_minimalloc(tmp_path, capsys):
    out = tmp_path / "gs.json"
    assert main(["workloads", "import", str(shared_hlo("graphsage_tf.hlo")), "--out", str(out),
                 "--capacity-fraction", "0.5"]) == 0  # fmt: skip
    w = load_workload(out)
    assert w.capacity == int(placeable_peak(w) * 0.5)
    csv = tmp_path / "m.csv"
    csv.write_text("id,lower,upper,size\n0,0,2,4\n1,1,3,4\n")
    assert (
        main(
            ["workloads", "import", str(csv), "--capacity", "8", "--out", str(tmp_path / "m.json")]
        )
        == 0
    )
    assert load_workload(tmp_path / "m.json").num_buffers == 2


def test_public_api_loads_lazily_and_solves():
    import subprocess
    import sys

    code = (
        "import sys, mallocmuzero as m\n"
        "assert 'jax' not in sys.modules and 'ray' not in sys.modules\n"
        "missing = [n for n in m.__all__ if getattr(m, n, None) is None]\n"
        "assert not missing, missing\n"
        "from mallocmuzero.env.random_workload import random_workload\n"
        "w = random_workload(3)\n"
        "s = m.solve(w, 'restarts', time_limit=0.2)\n"
        "assert m.validation_errors(w, s.offsets, w.capacity) == []\n"
        "assert s.estimated_time_s <= m.solve_msa(w).estimated_time_s\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
