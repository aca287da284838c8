"""Importers against XLA itself: flops, bytes and memory of every built-in program."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mallocmuzero.env import suite
from mallocmuzero.env.cost_model import total_time
from mallocmuzero.env.importers import hlo_costs, hlo_text, xla_dump
from mallocmuzero.env.importers.compile import compile_jax_function, import_hlo_text
from mallocmuzero.env.importers.minimalloc import import_minimalloc_csv
from mallocmuzero.env.solution import validation_errors
from mallocmuzero.env.workload import load_workload, save_workload, workload_to_dict
from mallocmuzero.errors import WorkloadError
from mallocmuzero.solvers.greedy import solve_msa

from conftest import SHARED, shared_hlo


def _cost(compiled):
    analysis = compiled.cost_analysis()
    return analysis[0] if isinstance(analysis, list) else analysis


@pytest.mark.parametrize("name", [p.name for p in suite.PROGRAMS])
def test_builtin_program_matches_xla_cost_and_memory_analysis(name):
    fn, args = suite.program(name).build()
    with tempfile.TemporaryDirectory() as dump:
        compiled = compile_jax_function(fn, args, dump)
        ba_path, hlo_path = xla_dump.find_module_files(Path(dump))
        assignment = xla_dump.parse_buffer_assignment(ba_path.read_text(), str(ba_path))
        module = hlo_text.parse_module(hlo_path.read_text())
        workload = xla_dump.workload_from_parts(assignment, module, name)
    cost = _cost(compiled)
    memory = compiled.memory_analysis()
    by_name = module.instruction_index()
    counter = hlo_costs.FlopCounter(module)
    scheduled = [by_name[n] for n in assignment.sequence if n in by_name]
    flops = sum(counter.instruction(i)[0] for i in scheduled)
    transcendentals = sum(counter.instruction(i)[1] for i in scheduled)
    nbytes = sum(hlo_costs.operand_and_output_bytes(module, by_name, i) for i in scheduled)
    # cost_analysis counts a while body once: compare with trip counts taken as 1. Flops
    # agree exactly on most programs; reduce-window corner cases leave < 1e-5.
    assert flops == pytest.approx(cost["flops"], rel=1e-5)
    assert transcendentals == pytest.approx(cost.get("transcendentals", 0.0), rel=1e-5)
    assert nbytes == pytest.approx(cost["bytes accessed"], rel=0.01)
    assert workload.flops.sum() == pytest.approx(
        cost["flops"] + cost.get("transcendentals", 0), rel=1e-5
    )
    # The workload's accesses carry the same bytes, except aliasing through loop tuples.
    assert workload.access_bytes.sum() == pytest.approx(cost["bytes accessed"], rel=0.2)
    # Memory: entry parameters exactly; the temp heap holds at least the temp values' peak.
    params = {v.allocation: v.size for v in assignment.values.values()
              if "parameter" in assignment.allocation_kinds[v.allocation]}  # fmt: skip
    assert sum(params.values()) == memory.argument_size_in_bytes
    live = np.zeros(len(assignment.sequence) + 2)
    for v in assignment.values.values():
        if (
            "preallocated-temp" in assignment.allocation_kinds[v.allocation]
            and v.live_key in assignment.live
        ):
            s, e = assignment.live[v.live_key]
            live[s] += v.size
            live[e + 1] -= v.size
    temp_peak = np.cumsum(live).max()
    assert 0.7 * memory.temp_size_in_bytes <= temp_peak <= memory.temp_size_in_bytes
    # Parameters are pinned, and msa's placement is valid.
    assert workload.pinned.any() and (~workload.pinned).any()
    assert validation_errors(workload, solve_msa(workload).offsets, workload.capacity) == []


def test_suite_sizes_span_the_issue_range():
    sizes = {}
    for prog in suite.PROGRAMS:
        sizes[prog.name] = suite.build_program(prog).num_buffers
    assert len(sizes) >= 10
    assert min(sizes.values()) <= 20 and max(sizes.values()) >= 600
    assert {p.split for p in suite.PROGRAMS} == {"train", "heldout"}


def test_build_is_deterministic_and_round_trips(tmp_path):
    a = suite.build_suite(tmp_path / "a", ["rnn_scan", "mlp_train"], progress=False)
    b = suite.build_suite(tmp_path / "b", ["rnn_scan", "mlp_train"], progress=False)
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
        loaded = load_workload(pa)
        save_workload(loaded, tmp_path / "again.json")
        assert json.loads((tmp_path / "again.json").read_text()) == json.loads(pa.read_text())
    rnn = load_workload(a[0])
    assert rnn.repeat.max() == 32  # the scan's trip count reached the loop body


@pytest.mark.parametrize("name,buffers", [("graphsage_tf.hlo", 20), ("ssd_mobilenet_tf.hlo", 100)])
def test_third_party_hlo_modules_import(name, buffers):
    workload = import_hlo_text(shared_hlo(name))
    assert workload.num_buffers >= buffers
    assert workload.flops.sum() > 0
    msa = solve_msa(workload)
    assert validation_errors(workload, msa.offsets, workload.capacity) == []
    assert msa.estimated_time_s <= msa.all_slow_time_s


def test_minimalloc_csv(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("id,lower,upper,size\n0,0,4,8\n1,1,3,8\n2,3,6,16\n3,5,6,8\n")
    per_unit = import_minimalloc_csv(path, capacity=16, compress=False)
    assert per_unit.num_instructions == 6
    data = workload_to_dict(per_unit)
    # One synthetic access per buffer per live time unit.
    per_buffer = {}
    for instr in data["instructions"]:
        for bid, _ in instr["accesses"]:
            per_buffer[bid] = per_buffer.get(bid, 0) + 1
    assert per_buffer == {0: 4, 1: 2, 2: 3, 3: 1}

    # Compressed to the event points 0, 1, 3, 4, 5, 6: every placement costs the same.
    workload = import_minimalloc_csv(path, capacity=16)
    assert workload.num_instructions == 5 and list(workload.repeat) == [1, 2, 1, 1, 1]
    for mask in range(2**4):
        fast = np.array([(mask >> b) & 1 for b in range(4)], dtype=bool)
        assert total_time(workload, fast) == pytest.approx(total_time(per_unit, fast), rel=1e-12)
    msa = solve_msa(workload)
    assert validation_errors(workload, msa.offsets, 16) == []
    assert (msa.offsets >= 0).sum() >= 2
    assert msa.estimated_time_s == pytest.approx(solve_msa(per_unit).estimated_time_s, rel=1e-12)


def test_minimalloc_capacity_comes_from_the_file_name(tmp_path):
    path = tmp_path / "X.4096.csv"
    path.write_text("id,lower,upper,size\n0,0,4,8\n")
    assert import_minimalloc_csv(path).capacity == 4096
    assert import_minimalloc_csv(path, capacity=64).capacity == 64
    plain = tmp_path / "plain.csv"
    plain.write_text("id,lower,upper,size\n0,0,4,8\n")
    with pytest.raises(WorkloadError, match="none in the file name"):
        import_minimalloc_csv(plain)


def per_unit_time(csv_path, fast_ids: set[int], hardware) -> float:
    """Cost model v1 summed over every time unit of the uncompressed instance (no flops)."""
    rows = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    ids, lower, upper, size = rows.T
    bandwidth = np.where(np.isin(ids, list(fast_ids)), hardware.fast_bandwidth,
                         hardware.slow_bandwidth)  # fmt: skip
    per_unit = np.zeros(upper.max() + 1)
    np.add.at(per_unit, lower, size / bandwidth)
    np.add.at(per_unit, upper, -size / bandwidth)
    return float(np.cumsum(per_unit)[:-1].sum())


def test_minimalloc_challenging_instances_import_compressed():
    folder = SHARED / "workloads" / "minimalloc"
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        pytest.skip(f"{folder} is absent (../shared is not beside this checkout)")
    assert len(paths) == 11
    for path in paths:
        workload = import_minimalloc_csv(path)
        n = workload.num_buffers
        assert workload.capacity == 1_048_576 and 154 <= n <= 454
        assert workload.num_instructions <= 2 * n + 1, (path.name, workload.num_instructions)
        assert workload.repeat.sum() <= 1_048_576
    instance_a = folder / "A.1048576.csv"
    workload = import_minimalloc_csv(instance_a)
    msa = solve_msa(workload)
    assert validation_errors(workload, msa.offsets, workload.capacity) == []
    fast_ids = {int(workload.buffer_ids[b]) for b in np.flatnonzero(msa.offsets >= 0)}
    uncompressed = per_unit_time(instance_a, fast_ids, workload.hardware)
    assert msa.estimated_time_s == pytest.approx(uncompressed, rel=1e-9)
    assert msa.all_slow_time_s == pytest.approx(
        per_unit_time(instance_a, set(), workload.hardware), rel=1e-9
    )


def test_area_share_counts_size_times_live_time_in_the_instance_units(tmp_path):
    from mallocmuzero.benchmarks.external_yardsticks import area_share

    path = tmp_path / "tiny.16.csv"
    path.write_text("id,lower,upper,size\n0,0,4,8\n1,1,3,8\n2,3,6,16\n3,5,6,8\n")
    workload = import_minimalloc_csv(path)
    index = {int(b): i for i, b in enumerate(workload.buffer_ids)}
    lives = workload.live_time()
    assert [lives[index[b]] for b in range(4)] == [4, 2, 3, 1]
    offsets = np.full(4, -1)
    offsets[index[2]] = 0  # 16 x 3 of a total 8x4 + 8x2 + 16x3 + 8x1 = 104
    assert area_share(workload, offsets) == pytest.approx(48 / 104)
    assert area_share(workload, np.zeros(4, dtype=np.int64)) == 1.0
