"""Shared fixtures: random and real workloads, the shared/ folder beside the checkout."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_HLO = SHARED / "workloads" / "hlo"
sys.path.insert(0, str(Path(__file__).parent))  # for tests/reference.py

from harness import UNIT_GROUP  # noqa: E402 (after the path that finds it)

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
    """
    from mallocmuzero.actors.evaluate import agent_solve
    from mallocmuzero.agent.networks import init_params
    from mallocmuzero.cluster import components
    from mallocmuzero.configs.loader import load_config

    config = load_config("configs/smoke.py", [f"workloads.dir={small_suite}"])
    workloads = components.base_workloads(config)
    params = init_params(components.agent_network(config),
                         components.observation_spec(config).size)  # fmt: skip
    components.make_self_play(config, workloads, None, seed=0).step(params)
    spec, search = components.evaluator_parts(config)
    agent_solve(workloads[0], params, spec, search, time_limit=0.1)


@pytest.fixture(scope="session")
def small_suite(tmp_path_factory):
    """A workload folder with two training programs and one held-out program."""
    from mallocmuzero.cli import main

    out = tmp_path_factory.mktemp("suite")
    programs = ["rnn_scan", "mlp_train", "rnn_scan_train"]
    assert main(["workloads", "build", "--out", str(out), "--only", *programs, "--quiet"]) == 0
    return out
