"""Every malformed input gets one line naming the file and the problem, and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mallocmuzero.cli import main
from mallocmuzero.env.random_workload import random_workload
from mallocmuzero.env.workload import workload_to_dict


def good_dict():
    return workload_to_dict(random_workload(0, num_buffers=6, num_instructions=8))


def break_size(d):
    d["buffers"][0]["size"] = 0


def break_end(d):
    d["buffers"][1]["end"] = d["buffers"][1]["start"]


def break_access(d):
    d["instructions"][-1]["accesses"].append([d["buffers"][0]["id"], 8])
    d["buffers"][0]["start"], d["buffers"][0]["end"] = 0, 1


def break_duplicate(d):
    d["buffers"][1]["id"] = d["buffers"][0]["id"]


def break_missing(d):
    del d["buffers"][2]["start"]


def break_capacity(d):
    d["capacity"] = 0


def break_format(d):
    d["format"] = "something/else"


def break_hardware(d):
    d["hardware"]["fast_bandwidth"] = -1


CASES = [
    (break_size, "buffers[0].size: must be > 0"),
    (break_end, "buffers[1].end: must be > start"),
    (break_access, "outside its live range"),
    (break_duplicate, "duplicate buffer id"),
    (break_missing, "buffers[2].start: missing"),
    (break_capacity, "capacity: must be > 0"),
    (break_format, "format: expected"),
    (break_hardware, "hardware.fast_bandwidth: must be > 0"),
]


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("breaker,message", CASES, ids=[c[0].__name__ for c in CASES])
def test_malformed_workload_one_line_exit_2(tmp_path, capsys, breaker, message):
    data = good_dict()
    breaker(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    out_path = tmp_path / "sol.json"
    code, _, err = run_cli(["solve", str(path), "--solver", "msa", "--out", str(out_path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and message in lines[0]
    assert not out_path.exists()  # nothing half-written


def test_bad_json_and_missing_file(tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "mallocmuzero.workload/1", ')
    code, _, err = run_cli(["workloads", "show", str(path)], capsys)
    assert code == 2 and "bad JSON at line 1" in err and str(path) in err
    code, _, err = run_cli(["workloads", "show", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "no such file" in err


def test_capacity_override_errors(tmp_path, capsys):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(good_dict()))
    code, _, err = run_cli(["workloads", "show", str(path), "--capacity", "0"], capsys)
    assert code == 2 and "capacity: must be > 0" in err
    code, _, err = run_cli(["workloads", "show", str(path), "--capacity-fraction", "-0.5"], capsys)
    assert code == 2 and "--capacity-fraction must be > 0" in err


def test_unreadable_dump_folder(tmp_path, capsys):
    empty = tmp_path / "dump"
    empty.mkdir()
    code, _, err = run_cli(
        ["workloads", "import", str(empty), "--out", str(tmp_path / "w.json")], capsys
    )
    assert code == 2 and str(empty) in err and "buffer-assignment" in err
    garbage = empty / "module_0001.jit_f.cpu_after_optimizations-buffer-assignment.txt"
    garbage.write_text("hello")
    (empty / "module_0001.jit_f.cpu_after_optimizations.txt").write_text("HloModule m\n")
    code, _, err = run_cli(
        ["workloads", "import", str(empty), "--out", str(tmp_path / "w.json")], capsys
    )
    assert code == 2 and "not an XLA buffer-assignment dump" in err
    assert not (tmp_path / "w.json").exists()


def test_bad_hlo_text(tmp_path, capsys):
    path = tmp_path / "bad.hlo"
    path.write_text("HloModule broken\nENTRY main { this is not hlo }\n")
    code, _, err = run_cli(
        ["workloads", "import", str(path), "--out", str(tmp_path / "w.json")], capsys
    )
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1


def test_bad_minimalloc_csv(tmp_path, capsys):
    path = tmp_path / "m.csv"
    path.write_text("id,lower,upper,size\n0,0,3,10\n1,2,x,5\n")
    code, _, err = run_cli(
        ["workloads", "import", str(path), "--capacity", "64", "--out", str(tmp_path / "w.json")],
        capsys,
    )
    assert code == 2 and "line 3: non-integer field" in err
    path.write_text("id,lower,upper,size\n0,3,3,10\n")
    code, _, err = run_cli(
        ["workloads", "import", str(path), "--capacity", "64", "--out", str(tmp_path / "w.json")],
        capsys,
    )
    assert code == 2 and "line 2: needs 0 <= lower < upper" in err
    path = tmp_path / "no_capacity.csv"
    path.write_text("id,lower,upper,size\n0,0,3,10\n")
    code, _, err = run_cli(["workloads", "import", str(path), "--out", str(tmp_path / "w.json")],
                           capsys)  # fmt: skip
    assert code == 2 and "none in the file name" in err and "Traceback" not in err


def test_bad_solution_file(tmp_path, capsys):
    wpath = tmp_path / "w.json"
    wpath.write_text(json.dumps(good_dict()))
    spath = tmp_path / "s.json"
    spath.write_text(
        json.dumps({"format": "mallocmuzero.solution/1", "capacity": 10, "placements": []})
    )
    code, _, err = run_cli(["validate", str(wpath), str(spath)], capsys)
    assert code == 2 and "buffers missing" in err


def test_no_traceback_from_the_console_script(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[]")
    proc = subprocess.run(
        [sys.executable, "-m", "mallocmuzero", "workloads", "show", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"mallocmuzero: error: {path}: top level must be a JSON object"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--solver", "agent", "--restarts-share", "0.5"], "--restarts-share needs a time limit"),
        (["--solver", "agent", "--restarts-share", "1", "--time-limit", "2"], "must be in [0, 1)"),
        (["--solver", "restarts", "--restarts-share", "0.5"], "an option of --solver agent"),
        (["--solver", "beam", "--own-order-share", "0.2"], "--own-order-share is an option of"),
        (
            ["--solver", "agent", "--own-order-share", "1", "--time-limit", "2"],
            "--own-order-share must be in [0, 1)",
        ),
        (["--solver", "agent", "--own-order-share", "0.4"], "--own-order-share needs the hybrid"),
    ],
)
def test_restarts_share_errors(tmp_path, capsys, options, message):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(good_dict()))
    out = tmp_path / "never.json"
    code, _, err = run_cli(["solve", str(path), *options, "--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_library_errors_name_the_argument_and_the_cli_its_flag(tmp_path, capsys):
    import mallocmuzero as mmz
    from mallocmuzero.env.workload import resolve_capacity
    from mallocmuzero.errors import ArgumentError

    workload = random_workload(0, num_buffers=6, num_instructions=8)
    with pytest.raises(ArgumentError, match=r"^time_limit must be > 0 \(got 0\)$"):
        mmz.solve(workload, "restarts", time_limit=0)
    with pytest.raises(ArgumentError, match=r"^fraction must be > 0"):
        resolve_capacity(workload, fraction=-1.0)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(good_dict()))
    out = tmp_path / "s.json"
    code, _, err = run_cli(["solve", str(path), "--solver", "restarts", "--time-limit", "0",
                            "--out", str(out)], capsys)  # fmt: skip
    assert code == 2 and "error: --time-limit must be > 0 (got 0.0)" in err
    assert not out.exists()


def test_cpsat_without_a_bound_yet_writes_a_valid_solution_with_a_null_bound(tmp_path, capsys):
    from mallocmuzero.env.solution import validation_errors
    from mallocmuzero.env.workload import load_workload

    path = tmp_path / "w.json"
    path.write_text(json.dumps(workload_to_dict(random_workload(3, num_buffers=60))))
    out = tmp_path / "s.json"
    code, printed, err = run_cli(["solve", str(path), "--solver", "cpsat", "--time-limit",
                                  "0.001", "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err
    solution = json.loads(out.read_text())
    workload = load_workload(path)
    offsets = [p["offset"] if p["offset"] is not None else -1 for p in solution["placements"]]
    assert validation_errors(workload, np.array(offsets), workload.capacity) == []
    if solution.get("bound_time_s") is None:  # no bound in time: said so, not a crash
        assert "no bound yet" in printed
