"""The tournament's rows as text: a table of cells per case and a one-line summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mallocmuzero.solvers.tournament import EvaluationRow


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


EVALUATION_HEADER = ["workload", "cap.", "agent s", "wall s", "msa s", "restarts s", "beam16 s",
                     "beam1 s", "cpsat s", "gain/msa", "headroom rec.",
                     "share of opt."]  # fmt: skip


def evaluation_table(rows: Sequence[EvaluationRow]) -> list[list[str]]:
    """One line of text cells per case (``*`` marks a cpsat time not proven optimal)."""
    return [
        [
            r.workload,
            f"{r.fraction:g}",
            f"{r.agent:.5g}",
            f"{r.agent_wall_s:.1f}",
            f"{r.msa:.5g}",
            f"{r.restarts:.5g}",
            f"{r.beam:.5g}",
            f"{r.lookahead:.5g}",
            f"{r.cpsat:.5g}" + ("" if r.cpsat_optimal else "*"),
            f"{r.gain_over_msa:+.2%}",
            _pct(r.headroom_recovered),
            _pct(r.share_of_optimum),
        ]
        for r in rows
    ]


def evaluation_summary(rows: Sequence[EvaluationRow], time_limit: float | None = None) -> str:
    """Mean and worst gain over msa, mean headroom recovered, wins against the searches."""
    budget = (
        "restarts and beam16 ran for the agent's wall time"
        if time_limit is None
        else f"every search had {time_limit:g} s"
    )
    recovered = [r.headroom_recovered for r in rows if r.headroom_recovered is not None]
    gains = [r.gain_over_msa for r in rows]
    beats_restarts = sum(r.agent < r.restarts for r in rows)
    beats_beam1 = sum(r.agent < r.lookahead for r in rows)
    loses_to_beam1 = sum(r.agent > r.lookahead for r in rows)
    return (
        f"{len(rows)} cases: mean gain over msa {np.mean(gains):+.2%}, worst {min(gains):+.2%}; "
        f"mean headroom recovered {_pct(float(np.mean(recovered)) if recovered else None)} over "
        f"{len(recovered)} cases with headroom; faster than restarts in {beats_restarts} cases; "
        f"faster than beam1 in {beats_beam1}, slower in {loses_to_beam1} "
        f"({budget}; * cpsat not proven)"
    )
