"""The program generator: distinct recipes, held-out families, and programs that import."""

from __future__ import annotations

import json

import pytest

from mallocmuzero.actors.workload_sampler import load_split
from mallocmuzero.cli import main
from mallocmuzero.env import generator
from mallocmuzero.env.solution import validation_errors
from mallocmuzero.env.suite import split_of
from mallocmuzero.env.workload import load_workload
from mallocmuzero.errors import ArgumentError
from mallocmuzero.solvers.greedy import solve_msa


def test_draws_are_distinct_reproducible_and_cover_the_families():
    programs = generator.draw_programs(300, seed=0)
    assert len(programs) == 300
    keys = {json.dumps(r, sort_keys=True) for r in programs.values()}
    assert len(keys) == 300  # no two programs share a recipe
    assert programs == generator.draw_programs(300, seed=0)
    assert programs != generator.draw_programs(300, seed=1)
    families = {r["family"] for r in programs.values()}
    assert families == set(generator.FAMILIES) and len(families) >= 6
    assert len(generator.HELDOUT_FAMILIES) >= 2
    assert not set(generator.HELDOUT_FAMILIES) & set(generator.TRAIN_FAMILIES)
    modes = {(r["mode"], r.get("optimizer")) for r in programs.values()}
    assert {("forward", None), ("train", "sgd"), ("train", "momentum"), ("train", "adam")} <= modes


def test_held_out_families_never_reach_the_training_split():
    for name, recipe in generator.draw_programs(40).items():
        expected = "heldout" if recipe["family"] in generator.HELDOUT_FAMILIES else "train"
        assert generator.generated_split(name) == expected == split_of(name)
        assert generator.family_of(name) == recipe["family"]
    assert generator.generated_split("mlp_train") is None
    assert split_of("lm_train") == "heldout"  # the built-in suite keeps its own splits


def test_every_family_compiles_imports_and_validates_and_the_cache_holds(tmp_path):
    count = len(generator.FAMILIES)  # the first draw of every family
    lines = []
    built = generator.generate(tmp_path, count, seed=3, progress=lines.append)
    assert len(built) == count, lines  # nothing skipped
    for name, entry in built.items():
        workload = load_workload(tmp_path / f"{name}.json")  # validates every spec rule
        assert workload.num_buffers == entry["buffers"] > 0
        assert (~workload.pinned).any()
        assert validation_errors(workload, solve_msa(workload).offsets, workload.capacity) == []
    train = load_split(str(tmp_path), "train")
    heldout = load_split(str(tmp_path), "heldout")
    assert {generator.family_of(w.name) for w in heldout} == set(generator.HELDOUT_FAMILIES)
    assert len(train) + len(heldout) == count
    again = []
    assert generator.generate(tmp_path, count, seed=3, progress=again.append) == built
    assert again == [f"[generate] {count} programs: {count} cached, 0 to compile"]


def test_bad_arguments_name_themselves(tmp_path, capsys):
    with pytest.raises(ArgumentError, match="^count must be >= 1"):
        generator.draw_programs(0)
    with pytest.raises(ArgumentError, match="^jobs must be >= 1"):
        generator.generate(tmp_path, 1, jobs=0)
    with pytest.raises(ArgumentError, match="^family unknown"):
        generator.draw_recipe("nope", None)
    assert main(["workloads", "generate", "--count", "0", "--out", str(tmp_path / "g")]) == 2
    assert "error: --count must be >= 1 (got 0)" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
