"""The shipped agent on model families it never saw, against search at the same time.

At each time limit, on held-out-family cases of the generated programs (and half as many
training-family cases, for the generalisation gap; the cases of the learning curve,
:func:`learning_curve.pick_cases`): the learned solver as ``solve --solver agent
--time-limit S`` runs it (``restarts+agent``: restarts for half the limit, then the agent
from restarts' best order), the agent alone, restarts, and the same hybrid with beam in
the agent's place (``restarts+beam``: planning with the exact model, no learning). Two
jobs at a time, one core each. Writes ``BENCHMARKS-generalisation.md`` and ``.json``::

    python -m mallocmuzero.benchmarks.generalisation --checkpoint checkpoints/pretrained
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mallocmuzero.benchmarks import anytime_profile, learning_curve
from mallocmuzero.benchmarks.tables import markdown_table, written_on
from mallocmuzero.env.generator import HELDOUT_FAMILIES, family_of
from mallocmuzero.env.workload import write_json_atomic

LIMITS = (5.0, 20.0)
LABEL = "shipped"
# Issue 20's bars for the learned solver on programs it never saw.
WINS_SHARE = 10 / 12  # at least as good as restarts where restarts beats msa
MEAN_RATIO = 1.003  # mean ratio to restarts
OVER_BEAM_PP = 0.5  # mean speed-up over msa above the same hybrid with beam
WORST = 0.999  # never worse than msa by more than 0.1%
TIE = 1e-9  # relative: equal cost-model times count as at least as good
# Percentage points within which two edges over restarts+beam count as level: about the
# run-to-run noise of restarts alone at these limits (README, --own-order-share).
TIE_PP = 0.1


def split_bars(rows: list[dict], cases: list[tuple[str, float]]) -> dict:
    """The bars' figures over ``cases`` from one limit's ``rows``."""
    by = {(r["workload"], r["fraction"], r["solver"]): r["speedup_over_msa"] for r in rows}
    hybrid, alone = f"restarts+agent@{LABEL}", f"agent@{LABEL}"
    solvers = (hybrid, alone, *learning_curve.BASELINES)
    cases = [c for c in cases if all((*c, s) in by for s in solvers)]
    if not cases:
        return {}
    restarts = np.array([by[(*c, "restarts")] for c in cases])
    mine = np.array([by[(*c, hybrid)] for c in cases])
    agent = np.array([by[(*c, alone)] for c in cases])
    beam = np.array([by[(*c, "restarts+beam")] for c in cases])
    beats = restarts > 1 + TIE
    at_least = mine >= restarts * (1 - TIE)
    return {
        "cases": len(cases),
        "restarts beats msa": int(beats.sum()),
        "wins where restarts beats msa": int((at_least & beats).sum()),
        "mean ratio": float(np.mean(mine / restarts)),
        "speedup": float(mine.mean()),
        "restarts+beam speedup": float(beam.mean()),
        "restarts speedup": float(restarts.mean()),
        "over beam pp": float(100 * (mine.mean() - beam.mean())),
        "worst over msa": float(mine.min()),
        "agent alone ratio": float(np.mean(agent / restarts)),
        "agent alone wins": int((agent >= restarts * (1 - TIE)).sum()),
    }


def bars_met(figures: dict) -> dict[str, bool]:
    """Each of issue 20's bars: met or not."""
    beats = figures["restarts beats msa"]
    return {
        "wins": figures["wins where restarts beats msa"] >= WINS_SHARE * beats,
        "mean ratio": figures["mean ratio"] >= MEAN_RATIO,
        "over beam": figures["over beam pp"] >= OVER_BEAM_PP,
        "worst": figures["worst over msa"] >= WORST,
    }


def summary(results: dict[float, dict]) -> list[dict]:
    """One row per limit and split (held-out families, training families)."""
    table = []
    for limit, result in results.items():
        for split in ("heldout", "train"):
            cases = [(n, f) for n, f in result["cases"]
                     if (family_of(n) in HELDOUT_FAMILIES) == (split == "heldout")]  # fmt: skip
            figures = split_bars(result["rows"], cases)
            if figures:
                table.append({"limit_s": limit, "split": split, **figures,
                              "met": bars_met(figures)})  # fmt: skip
    return table


def markdown(meta: dict, checkpoint: str, table: list[dict], written: str) -> str:
    """The bars' table and a line per bar."""
    header = ["limit", "families", "cases", "restarts+agent >= restarts where restarts beats msa",
              "mean ratio to restarts", "restarts+agent", "restarts+beam", "restarts",
              "over restarts+beam", "worst over msa", "agent alone: ratio, wins"]  # fmt: skip
    body = [
        [f"{r['limit_s']:g} s", "held out" if r["split"] == "heldout" else "training",
         str(r["cases"]), f"{r['wins where restarts beats msa']} of {r['restarts beats msa']}",
         f"{r['mean ratio']:.4f}", f"{r['speedup']:.4f}", f"{r['restarts+beam speedup']:.4f}",
         f"{r['restarts speedup']:.4f}", f"{r['over beam pp']:+.2f} pp",
         f"{r['worst over msa']:.4f}",
         f"{r['agent alone ratio']:.4f}, {r['agent alone wins']} of {r['cases']}"]
        for r in table
    ]  # fmt: skip
    lines = [
        "# The shipped agent on model families it never saw",
        "",
        f"Written by `python -m mallocmuzero.benchmarks.generalisation` on {written}. "
        f"Checkpoint `{checkpoint}` ({meta.get('learner_steps', 0):,} learner steps, "
        f"{meta.get('train_seconds', 0) / 60:.0f} training minutes on "
        f"{len(meta.get('training_programs', [])) or 'its'} programs of the families "
        f"{', '.join(meta.get('training_families', [])) or 'of its config'}). Cases: the "
        f"generated programs of the held-out families ({', '.join(sorted(HELDOUT_FAMILIES))}) "
        "and of the training families, 100 unpinned buffers or more, at 0.1 and 0.25 of "
        "peak. `restarts+agent` is what `solve --solver agent --time-limit S` runs: "
        f"{anytime_profile.hybrid_description()}; `restarts+beam` is the same with beam in "
        "the agent's place. "
        "Speed-ups are over msa, ratios to restarts at the same limit (mean over the "
        "cases). Two jobs at a time, one core each.",
        "",
        markdown_table(header, body),
        "",
        f"Issue 20's bars on the held-out families (at least as good as restarts in "
        f"{WINS_SHARE * 12:.0f} of every 12 cases where restarts beats msa, mean ratio "
        f">= {MEAN_RATIO}, >= {OVER_BEAM_PP} pp over restarts+beam, never below "
        f"{WORST} of msa):",
        "",
    ]
    for r in table:
        if r["split"] == "heldout":
            said = ", ".join(f"{bar} {'met' if ok else 'NOT met'}" for bar, ok in r["met"].items())
            lines.append(f"- {r['limit_s']:g} s: {said}.")
    return "\n".join([*lines, "", *what_limits(table)]) + "\n"


def beam_edges(rows: list[dict]) -> str:
    """Each row's edge over restarts+beam and its limit, in words."""
    return ", ".join(f"{r['over beam pp']:+.2f} pp at {r['limit_s']:g} s" for r in rows)


def breadth_note(heldout: list[dict], trained: list[dict]) -> str:
    """Whether data breadth limits it, as a bullet.

    Compares the edge over restarts+beam on the training families (``trained`` rows)
    with the held-out families' (``heldout`` rows).
    """
    if not trained:
        return "- **Data breadth**: not measured (no training-family cases)."
    seen_edges, unseen_edges = beam_edges(trained), beam_edges(heldout)
    seen = np.mean([r["over beam pp"] for r in trained])
    unseen = np.mean([r["over beam pp"] for r in heldout])
    if seen <= unseen + TIE_PP:
        return (f"- **Not data breadth**: on the training families, the kinds of program it "
                f"trained on, the learned hybrid is no further ahead of restarts+beam "
                f"({seen_edges}) than on the unseen ones ({unseen_edges}): the gap is not "
                "one of generalisation, so more programs of the same kinds are unlikely to "
                "close it.")  # fmt: skip
    return (f"- **Data breadth**: on the training families the learned hybrid is further ahead "
            f"of restarts+beam ({seen_edges}) than on the unseen ones ({unseen_edges}): "
            "what it learned carries only partly to new families, and training on more "
            "families is a lever.")  # fmt: skip


def what_limits(table: list[dict]) -> list[str]:
    """Where a bar is not met: what the figures show limits the learned solver."""
    missed = [r for r in table if r["split"] == "heldout" and not all(r["met"].values())]
    if not missed:
        return []
    alone = ", ".join(f"{r['agent alone ratio']:.4f} and {r['agent alone wins']} of "
                      f"{r['cases']} at {r['limit_s']:g} s" for r in missed)  # fmt: skip
    edges = beam_edges(missed)
    by_limit = sorted(missed, key=lambda r: r["limit_s"])
    trend = (
        "The edge shrinks as the limit grows: the agent's advantage is in how little time it needs."
        if len(by_limit) > 1 and by_limit[0]["over beam pp"] > by_limit[-1]["over beam pp"]
        else "The edge grows with the limit, but stays below the bar."
    )
    trained = [r for r in table if r["split"] == "train"]
    mean_alone = np.mean([r["agent alone ratio"] for r in missed])
    side = "just above" if mean_alone >= 1 else "just below"
    return [
        "What limits it, as measured here:",
        "",
        f"- **Learning adds little over exact planning from the same order** ({edges} over "
        "restarts+beam). Both hybrids search with the shipped game's moves (8 pick slots, "
        "8 offsets) from the same base orders; given the same seconds, beam's exact-model "
        "search over those moves finds about what the agent's learned search finds. "
        f"{trend} A first phase in which the agent plays from msa's own order "
        "(`--own-order-share 0.4`) widens the edge on these families, where the agent alone "
        "is ahead of restarts on the mixers, but costs restarts' time on the large built-in "
        "programs at 5 s, and wins fewer cases: about even overall "
        "([BENCHMARKS-own-order.md](BENCHMARKS-own-order.md)).",
        f"- **The agent alone is {side} restarts on average but rarely ahead case by case** "
        f"(mean ratio and cases at least as good: {alone}): its rollouts stay near their "
        "base order, where restarts samples orders far from it.",
        breadth_note(missed, trained),
        "- **Not the algorithm around the network**: the other solve-time candidates, measured "
        "once on these cases (README, after `--own-order-share`), are no further ahead of "
        "their beam counterparts: the agent refining restarts' 4 best orders in one batch, "
        "fewer simulations a step (more rollouts in the same time), and restarts' best order "
        "and msa's own in one batch (the closest: +0.26 pp at 5 s and +0.47 pp at 20 s with "
        "the checkpoint shipped at stop 28, level with beam on the built-in held-out split).",
        "- **Training budget and network**: the shipped agent had its run's training time on "
        "2 cores (above), and on the learning curve ([BENCHMARKS-curve.md](BENCHMARKS-curve.md)) "
        "the learned hybrid's ratio to restarts is flat from its first snapshots on: more of "
        "the same training is unlikely to close the gap alone (a second run from scratch on "
        "the shipped game, 130 minutes with half its games from restarts' kind of order, is "
        "not ahead of the shipped checkpoint here: `checkpoints/shipped-game-run`; nor is the "
        "curve run after 62 more minutes with half its games from the order restarts keeps "
        "after 256 tries, `workloads.base_order_tries`, the kind of order the hybrid refines "
        "at solve time: `checkpoints/curve-run`). A network "
        "with more capacity, the per-buffer `set` encoder, measured worse at equal training "
        "time on 2 CPU cores ([BENCHMARKS-encoder.md](BENCHMARKS-encoder.md): it halves the "
        "learner's rate there), so the MLP stays.",
        "- **Next levers**: more training on the same distribution (a GPU learner and more "
        "actors: BENCHMARKS-scale.md sizes it), and an action that proposes the order "
        "itself, so that what the agent learns reaches past the base order's neighbourhood.",
    ]


def main() -> None:
    """Measure every limit and write the table and its JSON beside ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/pretrained")
    parser.add_argument("--workloads", default="workloads/generated")
    parser.add_argument("--limits", type=float, nargs="+", default=list(LIMITS))
    parser.add_argument("--cases", type=int, default=12, help="held-out-family cases")
    parser.add_argument("--out", default="BENCHMARKS-generalisation.md")
    parser.add_argument("--cache", default=".bench-curve.jsonl", help="shared with the curve")
    args = parser.parse_args()
    say = lambda line: print(line, flush=True)  # noqa: E731
    meta = json.loads((Path(args.checkpoint) / "meta.json").read_text())
    agents = {LABEL: {"path": args.checkpoint, "meta": meta}}
    results = {
        limit: learning_curve.run(
            agents, Path(args.workloads), limit, args.cases, Path(args.cache), say
        )  # fmt: skip
        for limit in args.limits
    }
    table = summary(results)
    out = Path(args.out)
    written = written_on()
    write_json_atomic({"checkpoint": args.checkpoint, "written": written, "summary": table,
                       "rows": {str(k): v["rows"] for k, v in results.items()}},
                      out.with_suffix(".json"))  # fmt: skip
    out.write_text(markdown(meta, args.checkpoint, table, written))
    say(f"wrote {out}")


if __name__ == "__main__":
    main()
