"""The arithmetic of benchmark summaries that state a bar as met or not."""

from __future__ import annotations

import pytest

from mallocmuzero.benchmarks import generalisation


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
