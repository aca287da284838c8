"""Shared fixtures: random and real workloads, the shared/ folder beside the checkout."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_HLO = SHARED / "workloads" / "hlo"
sys.path.insert(0, str(Path(__file__).parent))  # for tests/reference.py

from harness import JAX_CACHE_SETTINGS, UNIT_GROUP  # noqa: E402 (after the path that finds it)

for _name, _value in JAX_CACHE_SETTINGS.items():  # before any test imports JAX
    os.environ.setdefault(_name, _value)

# Ray starts its workers at nice 15; the unit group's worker shares the cores evenly with
# them, so the real runs (the longest group) are not starved while it runs.
UNIT_NICENESS = 15


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Every test outside the real runs' group joins the unit group (pytest-xdist's
    ``--dist loadgroup`` then gives each group one worker)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(UNIT_GROUP))


def pytest_runtest_setup(item):
    """In a pytest-xdist worker, the unit group runs at ``UNIT_NICENESS``."""
    groups = {mark.args[0] for mark in item.iter_markers("xdist_group") if mark.args}
    if os.environ.get("PYTEST_XDIST_WORKER") and UNIT_GROUP in groups:
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), UNIT_NICENESS))


@pytest.fixture(scope="session")
def real_workloads():
    """A few real programs from the built-in suite, compiled once per session."""
    from mallocmuzero.env import suite

    return {
        name: suite.build_program(suite.program(name))
        for name in ("mlp_train", "transformer_block", "rnn_scan_train", "strassen_512")
    }


def shared_hlo(name: str) -> Path:
    """Path of a third-party HLO module in ../shared, or skip with the reason."""
    path = SHARED_HLO / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def train_only_suite(small_suite, tmp_path_factory):
    """``small_suite``'s training programs alone: a run on it has no evaluator."""
    from mallocmuzero.env.suite import split_of

    out = tmp_path_factory.mktemp("train-only-suite")
    for path in small_suite.glob("*.json"):
        if split_of(path.stem) == "train":
            shutil.copy(path, out)
    return out


@pytest.fixture(scope="session")
def smoke_kernels_compiled(small_suite):
    """The numba kernels of a smoke run, compiled into the cache by this process first.

    A real run's self-play actors and evaluator load their kernels from the cache; on a
    cold cache (a fresh CI machine) each would compile every kernel at once, on two cores.
    msa plays every program of the suite with the smoke config's observation (its
    lookahead included), and each program's msa rollout is scored, as the evaluator does.
    """
    from mallocmuzero.agent.solve import observation_spec
    from mallocmuzero.configs.loader import load_config
    from mallocmuzero.env.game import BatchedGame, GameBank
    from mallocmuzero.env.solution import make_solution
    from mallocmuzero.env.workload import load_workload

    spec = observation_spec(load_config("configs/smoke.py", [f"workloads.dir={small_suite}"]))
    for path in sorted(small_suite.glob("*.json")):
        workload = load_workload(path)
        game = BatchedGame(GameBank.build([workload]), 1, spec=spec)
        game.reset_all([0], [workload.capacity])
        game.observe()
        while not game.is_done(0):
            game.step(np.array([game.msa_action(0)]))
        game.reset_all([0], [workload.capacity])
        game.msa_rollout(0)
        make_solution(workload, game.offsets(0), "msa")


@pytest.fixture(scope="session")
def small_suite(tmp_path_factory):
    """A workload folder with two training programs and one held-out program."""
    from mallocmuzero.cli import main

    out = tmp_path_factory.mktemp("suite")
    programs = ["rnn_scan", "mlp_train", "rnn_scan_train"]
    assert main(["workloads", "build", "--out", str(out), "--only", *programs, "--quiet"]) == 0
    return out
