"""The arithmetic of benchmark summaries that state a bar as met or not."""

from __future__ import annotations

import pytest

from mallocmuzero.agent.checkpoint import checkpoint_digest
from mallocmuzero.benchmarks import generalisation
from mallocmuzero.solvers.registry import pretrained_checkpoint

AGENTS = {"shipped": str(pretrained_checkpoint())}


def rows_for(case: tuple[str, float], **speedups: float) -> list[dict]:
    solvers = {"restarts+agent": f"restarts+agent@{generalisation.LABEL}",
               "agent": f"agent@{generalisation.LABEL}"}  # fmt: skip
    return [{"workload": case[0], "fraction": case[1], "solver": solvers.get(name, name),
             "speedup_over_msa": value} for name, value in speedups.items()]  # fmt: skip


def test_generalisation_bars_count_only_cases_where_restarts_beats_msa():
    cases = [("gen_mixer_0001", 0.1), ("gen_mixer_0002", 0.25), ("gen_unet_0003", 0.1)]
    rows = (
        rows_for(
            cases[0],
            restarts=1.10,
            **{"restarts+agent": 1.12, "restarts+beam": 1.10, "agent": 1.05},
        )  # fmt: skip
        + rows_for(
            cases[1],
            restarts=1.20,
            **{"restarts+agent": 1.19, "restarts+beam": 1.20, "agent": 1.20},
        )  # fmt: skip
        # restarts ties msa here: the case counts for the means, not for the wins
        + rows_for(
            cases[2], restarts=1.0, **{"restarts+agent": 0.9995, "restarts+beam": 1.0, "agent": 1.0}
        )  # fmt: skip
    )
    figures = generalisation.split_bars(rows, cases)
    assert figures["cases"] == 3 and figures["restarts beats msa"] == 2
    assert figures["wins where restarts beats msa"] == 1
    assert figures["mean ratio"] == pytest.approx((1.12 / 1.10 + 1.19 / 1.20 + 0.9995) / 3)
    assert figures["over beam pp"] == pytest.approx(100 * (3.3095 - 3.30) / 3)
    assert figures["worst over msa"] == pytest.approx(0.9995)
    assert figures["agent alone wins"] == 2
    met = generalisation.bars_met(figures)
    assert met == {"wins": False, "mean ratio": True, "over beam": False, "worst": True}
    # A case some solver has no row for is left out, not counted as a loss.
    assert generalisation.split_bars(rows[:-1], cases)["cases"] == 2


def test_what_limits_the_generalisation_compares_the_training_families_edge():
    met = {"wins": True, "mean ratio": True, "over beam": False, "worst": True}
    row = {"agent alone ratio": 1.01, "agent alone wins": 3, "cases": 12, "met": met}
    table = [{**row, "limit_s": 5.0, "split": "heldout", "over beam pp": 0.08},
             {**row, "limit_s": 5.0, "split": "train", "over beam pp": -0.02}]  # fmt: skip
    lines = generalisation.what_limits(table)
    (breadth,) = [line for line in lines if "Not data breadth" in line]
    assert "(-0.02 pp at 5 s) than on the unseen ones (+0.08 pp at 5 s)" in breadth
    assert "+0.08 pp at 5 s over restarts+beam" in "\n".join(lines)
    # Further ahead on the families it trained on: breadth is named as a lever.
    table[1]["over beam pp"] = 0.6
    (breadth,) = [line for line in generalisation.what_limits(table) if "breadth" in line]
    assert breadth.startswith("- **Data breadth**") and "is a lever" in breadth
    # Every held-out bar met: nothing limits it.
    assert generalisation.what_limits([{**table[0], "met": dict.fromkeys(met, True)}]) == []


def test_the_agent_limit_note_counts_full_packings_per_solver():
    from mallocmuzero.benchmarks.external_yardsticks import agent_limit_note

    def r(solver, limit, full, share, nodes=None):
        return {"solver": solver, "limit_s": limit, "full": full, "area_share": share,
                "nodes": nodes}  # fmt: skip

    rows = [r("agent", None, False, 0.9), r("agent", None, False, 0.8),
            r("packing", 20.0, True, 1.0, 300), r("packing", 20.0, True, 1.0, 100),
            r("packing", 5.0, False, 0.9, 5), r("canonical", 20.0, False, 0.95),
            r("canonical", 20.0, True, 1.0)]  # fmt: skip
    note = agent_limit_note(rows)
    assert "The agent packs 0 of 2 (mean 85.0% of the area)" in note
    assert "the packing search 2 of 2 at 20 s" in note
    assert "a median of 200 search nodes" in note
    assert "packs 1 of 2 (97.5% of the area)" in note
    assert agent_limit_note([r("agent", None, False, 0.9)]) == ""


def test_a_curve_of_two_runs_keeps_each_runs_snapshots_apart(tmp_path):
    import json

    from mallocmuzero.benchmarks import learning_curve

    found = {}
    for run, minutes in (("set", 20), ("mlp", 20)):
        folder = tmp_path / run / "snapshots" / f"minute_{minutes:04d}.0"
        folder.mkdir(parents=True)
        meta = {"train_seconds": 60.0 * minutes, "learner_steps": 5, "self_play_steps": 9}
        (folder / "meta.json").write_text(json.dumps(meta))
        found |= learning_curve.snapshots(tmp_path / run, f"{run}: ")
    assert sorted(found) == ["mlp: 20 min", "set: 20 min"]
    case = ("gen_mixer_0001", 0.1)  # a held-out family
    speedups = {"restarts": 1.10, "restarts+beam": 1.05, "agent@set: 20 min": 1.21,
                "agent@mlp: 20 min": 0.99, "restarts+agent@set: 20 min": 1.21,
                "restarts+agent@mlp: 20 min": 0.99}  # fmt: skip
    rows = [{"workload": case[0], "fraction": case[1], "solver": solver, "limit_s": 5.0,
             "speedup_over_msa": value} for solver, value in speedups.items()]  # fmt: skip
    table = learning_curve.summary({"rows": rows, "snapshots": found, "cases": [list(case)]})
    held = {r["run"]: r for r in table if r["split"] == "heldout"}
    assert held["set"]["agent ratio"] == pytest.approx(1.21 / 1.10)
    assert held["mlp"]["agent ratio"] == pytest.approx(0.99 / 1.10)
    assert "at 20 min set 1.1000, mlp 0.9000 (best: set)" in learning_curve.comparison(table)
    learning_curve.plot(table, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_the_accelerator_report_divides_by_the_same_runs_baseline():
    from mallocmuzero.benchmarks import accelerator

    result = {"written": "today", "accelerator": "H100", "cpus": 16, "jax": "x",
              "learner": [{"encoder": "set", "batch": 64, "cpu": 50.0, "accelerator": 400.0}],
              "self_play": [{"processes": 1, "steps_per_s": 1000.0},
                            {"processes": 8, "steps_per_s": 6000.0}]}  # fmt: skip
    text = accelerator.markdown(result)
    assert "| set | 64 | 50.0 | 400.0 | 8.0 |" in text
    assert "| 8 | 6,000 | 0.75 |" in text


def test_a_cache_never_hands_a_hybrid_of_another_own_order_share_to_the_report(monkeypatch):
    """Hybrid rows carry the own-order share they ran with; a cached one of another share
    is run again, and every other solver's rows (share 0) stay."""
    from mallocmuzero.benchmarks import anytime_profile

    monkeypatch.setattr(anytime_profile, "OWN_ORDER_SHARE", 0.4)
    shipped = {"agent": "shipped", "agent_digest": checkpoint_digest(pretrained_checkpoint())}
    none = {"agent": None, "agent_digest": None}
    rows = [
        {"solver": "restarts+agent@shipped", **shipped},  # measured before the share: 0
        {"solver": "restarts+beam", "own_order_share": 0.4, **none},
        {"solver": "restarts+agent", "own_order_share": 0.0, **shipped},
        {"solver": "restarts", "own_order_share": 0.0, **none},
        {"solver": "agent@shipped", **shipped},
    ]
    kept = anytime_profile.current_rows(dict(enumerate(rows)), AGENTS)
    assert [rows[k]["solver"] for k in kept] == ["restarts+beam", "restarts", "agent@shipped"]
    assert anytime_profile.own_order_share_of("restarts+agent@20 min") == 0.4
    assert anytime_profile.own_order_share_of("agent@shipped") == 0.0


def test_a_cache_never_hands_another_checkpoints_rows_to_a_label(tmp_path):
    """Agent rows carry their checkpoint's digest (parameters and config): rows measured
    under a label whose checkpoint has other parameters now, or rows from before the
    digests, are run again; rows of solvers without an agent stay."""
    import shutil

    from mallocmuzero.benchmarks import anytime_profile

    other = tmp_path / "other"
    shutil.copytree(pretrained_checkpoint(), other)
    (other / "params.msgpack").write_bytes((other / "params.msgpack").read_bytes()[::-1])
    assert checkpoint_digest(other) != checkpoint_digest(pretrained_checkpoint())
    mine = {"agent": "shipped", "agent_digest": checkpoint_digest(pretrained_checkpoint())}
    rows = [
        {"solver": "agent@shipped", **mine},
        {"solver": "restarts", "agent": None, "agent_digest": None},
        {"solver": "agent@gone", "agent": "gone", "agent_digest": mine["agent_digest"]},
        {"solver": "restarts+beam"},  # before the digests
    ]
    kept = anytime_profile.current_rows(dict(enumerate(rows)), AGENTS)
    assert [rows[k]["solver"] for k in kept] == ["agent@shipped", "restarts"]
    changed = {"shipped": str(other)}
    assert anytime_profile.current_rows(dict(enumerate(rows)), changed) == {1: rows[1]}


def test_the_own_order_table_sets_each_hybrid_against_restarts_and_its_beam_counterpart():
    from mallocmuzero.benchmarks import own_order

    speedups = {"restarts": (1.10, 1.0), "agent@0.4": (1.12, 1.0), "beam@0.4": (1.11, 1.0)}
    rows = [
        {"set": own_order.SETS[0], "workload": w, "fraction": 0.1, "solver": s,
         "limit_s": 5.0, "speedup_over_msa": pair[i]}
        for s, pair in speedups.items() for i, w in enumerate(("a", "b"))
    ]  # fmt: skip
    rows.append({**rows[0], "workload": "c", "solver": "restarts"})  # no hybrid: left out
    table = own_order.summary(rows)
    agent = next(r for r in table if r["solver"] == "agent@0.4")
    assert agent["cases"] == 2 and agent["speedup"] == pytest.approx(1.06)
    assert (agent["wins"], agent["restarts beats msa"]) == (1, 1)  # "b": restarts ties msa
    text = own_order.markdown({"written": "today", "summary": table})
    assert (
        "| held-out families | 5 s | 0.4 | 2 | 1.0600 | 1.0550 | +0.50 pp | 1.0500 | 1 of 1 |"
        in text
    )


def test_every_benchmarks_solver_names_the_agent_it_ran(monkeypatch):
    """One rule names the agent behind a row, whatever the benchmark calls its solvers: an
    agent's own label, ``kind@label``, else the worker's first agent for the agent's kinds
    (the own-order benchmark's ``agent@share`` too); None without an agent."""
    from mallocmuzero.benchmarks import anytime_profile

    monkeypatch.setattr(anytime_profile, "_AGENTS", {"shipped": object(), "agent v1": object()})
    monkeypatch.setattr(anytime_profile, "_DIGESTS", {"shipped": "d1", "agent v1": "d2"})
    expected = {"agent v1": "agent v1", "restarts+agent@agent v1": "agent v1",
                "agent@shipped": "shipped", "agent": "shipped", "restarts+agent": "shipped",
                "agent@0.4": "shipped", "restarts": None, "restarts+beam": None,
                "beam@0.4": None, "cpsat": None}  # fmt: skip
    assert {s: anytime_profile.agent_of(s) for s in expected} == expected
    assert anytime_profile.provenance("agent v1") == {
        "own_order_share": 0.0,
        "agent": "agent v1",
        "agent_digest": "d2",
    }
    assert anytime_profile.provenance("restarts")["agent_digest"] is None
