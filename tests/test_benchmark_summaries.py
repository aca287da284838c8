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
