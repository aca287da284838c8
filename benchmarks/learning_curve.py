"""The learning curve: a run's snapshots against restarts at the same time limit.

For every snapshot a run kept (``RUN/snapshots/minute_<m>/``, see ``run.snapshot_minutes``)
the agent alone and the learned hybrid (restarts for half the limit, then the agent from
restarts' best order) solve a fixed set of cases at one time limit; restarts and the same
hybrid with beam in the agent's place (no learning) solve them once. Cases come from the
held-out families of the generated programs and, for the generalisation gap, from the
training families. Jobs run two at a time, each on one core (XLA with one thread), as the
anytime profile does. Writes ``BENCHMARKS-curve.md``, ``.json`` and ``.png``::

    python -m mallocmuzero.benchmarks.learning_curve --run runs/curve
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mallocmuzero.benchmarks import anytime_profile, job_pool
from mallocmuzero.benchmarks.tables import written_on
from mallocmuzero.env.generator import HELDOUT_FAMILIES, family_of
from mallocmuzero.env.observation import SHIPPED_GAME
from mallocmuzero.env.workload import Workload, load_workload, resolve_capacity, write_json_atomic

BASELINES = ("restarts", "restarts+beam")
FRACTIONS = (0.1, 0.25)


def snapshots(run_dir: Path, prefix: str = "") -> dict[str, dict]:
    """``{label: {"path", "meta", "run"}}`` of a run's snapshots, by training minutes.

    A label is ``prefix`` and the training minutes (``"set: 20 min"``); ``run`` is the
    prefix without its colon, or "" (several runs share one table with prefixes).
    """
    found = {}
    for folder in sorted((run_dir / "snapshots").glob("minute_*")):
        meta = json.loads((folder / "meta.json").read_text())
        label = f"{prefix}{meta['train_seconds'] / 60:.0f} min"
        found[label] = {"path": str(folder), "meta": meta, "run": prefix.rstrip(": ")}
    return found


def pick_cases(folder: Path, per_split: int) -> list[tuple[str, float, Workload]]:
    """``per_split`` held-out-family cases and half as many training-family ones.

    Programs with 100 unpinned buffers or more, spread evenly over their sizes, fractions
    in turn; the same cases for a folder every time.
    """
    chosen = []
    for heldout, count in ((True, per_split), (False, max(per_split // 2, 1))):
        pool = []
        for path in sorted(folder.glob("gen_*.json")):
            if (family_of(path.stem) in HELDOUT_FAMILIES) == heldout:
                w = load_workload(path)
                if int((~w.pinned).sum()) >= 100:
                    pool.append(w)
        pool.sort(key=lambda w: (w.num_buffers, w.name))
        picks = np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int)
        for k, i in enumerate(dict.fromkeys(picks.tolist())):
            f = FRACTIONS[k % len(FRACTIONS)]
            chosen.append((pool[i].name, f, resolve_capacity(pool[i], fraction=f)))
    return chosen


def run_job(job: tuple) -> dict:
    """One solver (an agent snapshot, its hybrid, or a baseline) on one case."""
    name, fraction, workload, solver, limit, pick = job
    label, _, snapshot = solver.partition("@")
    if snapshot:
        agent = anytime_profile._AGENTS[snapshot]
        share = anytime_profile.RESTARTS_SHARE if label == "restarts+agent" else 0.0
        solution = agent.solve(workload, time_limit=limit, restarts_share=share)
        from mallocmuzero.solvers.greedy import solve_msa

        msa = solve_msa(workload).estimated_time_s
        row = {"workload": name, "fraction": fraction, "solver": solver, "limit_s": limit,
               "speedup_over_msa": msa / solution.estimated_time_s}  # fmt: skip
    else:
        row = anytime_profile.run_job(job)
    kept = {k: row[k] for k in ("workload", "fraction", "solver", "limit_s", "speedup_over_msa")}
    return {**kept, **anytime_profile.provenance(solver)}


def _key(row: dict) -> tuple:
    return (row["workload"], row["fraction"], row["solver"], row["limit_s"])


def run(found: dict[str, dict], folder: Path, limit: float, per_split: int, cache: Path,
        progress: Callable[[str], None]) -> dict:  # fmt: skip
    """Every agent and baseline on the cases; rows, agents and cases.

    ``found`` maps a label to an agent checkpoint's ``{"path", "meta"}`` (:func:`snapshots`).
    """
    cases = pick_cases(folder, per_split)
    pick = (SHIPPED_GAME.pick_candidates, SHIPPED_GAME.pick_encoding)  # restarts+beam's game
    solvers = [*BASELINES, *(f"{kind}@{s}" for s in found for kind in ("agent", "restarts+agent"))]
    agents = {label: s["path"] for label, s in found.items()}
    done = anytime_profile.current_rows(job_pool.cached_rows(cache, _key), agents)
    jobs = [(n, f, w, s, limit, pick) for n, f, w in cases for s in solvers
            if (n, f, s, limit) not in done]  # fmt: skip
    rows = job_pool.run_jobs(jobs, run_job, done, _key, cache, progress, "speedup_over_msa",
                             2, anytime_profile._init_worker, (agents,))  # fmt: skip
    keep = {(n, f) for n, f, _ in cases}
    rows = [r for r in rows if (r["workload"], r["fraction"]) in keep and r["limit_s"] == limit]
    return {"rows": rows, "snapshots": found, "limit_s": limit,
            "cases": [[n, f] for n, f, _ in cases]}  # fmt: skip


def summary(result: dict) -> list[dict]:
    """Per snapshot and split: mean speed-up over msa, ratio to restarts, wins."""
    by = {
        (r["workload"], r["fraction"], r["solver"]): r["speedup_over_msa"] for r in result["rows"]
    }
    out = []
    for label, snap in result["snapshots"].items():
        for split in ("heldout", "train"):
            cases = [(n, f) for n, f in result["cases"]
                     if (family_of(n) in HELDOUT_FAMILIES) == (split == "heldout")]  # fmt: skip
            row = {"snapshot": label, "split": split, "run": snap.get("run", ""), **snap["meta"]}
            for solver in ("agent", "restarts+agent"):
                mine = [by.get((n, f, f"{solver}@{label}")) for n, f in cases]
                rest = [by.get((n, f, "restarts")) for n, f in cases]
                pairs = [(a, b) for a, b in zip(mine, rest) if a is not None and b is not None]
                if pairs:
                    row[f"{solver} speedup"] = float(np.mean([a for a, _ in pairs]))
                    row[f"{solver} ratio"] = float(np.mean([a / b for a, b in pairs]))
                    row[f"{solver} wins"] = f"{sum(a >= b for a, b in pairs)}/{len(pairs)}"
            for base in BASELINES:
                vals = [by[(n, f, base)] for n, f in cases if (n, f, base) in by]
                row[f"{base} speedup"] = float(np.mean(vals)) if vals else float("nan")
            out.append(row)
    return out


def verdict(table: list[dict]) -> str:
    """Whether quality still rises at the last snapshot (held-out families), per run."""
    sentences = []
    for run in dict.fromkeys(r.get("run", "") for r in table):
        rows = [r for r in table if r["split"] == "heldout" and r.get("run", "") == run]
        if len(rows) < 2:
            sentences.append(f"{run or 'The run'}: one snapshot, no trend yet.")
            continue
        parts = []
        for solver in ("restarts+agent", "agent"):
            before, last = rows[-2].get(f"{solver} ratio"), rows[-1].get(f"{solver} ratio")
            if before is None or last is None:
                continue
            trend = (
                "still rises"
                if last > before + 1e-4
                else "is flat"
                if last > before - 1e-4
                else "falls"
            )
            parts.append(f"{solver} {trend} ({before:.4f} to {last:.4f} of restarts)")
        sentences.append(
            f"From {rows[-2]['snapshot']} to {rows[-1]['snapshot']} on the held-out families: "
            + "; ".join(parts)
            + "."
        )
    return " ".join(sentences)


def comparison(table: list[dict]) -> str:
    """With several runs: their held-out ratios at each training time they share, and rates."""
    runs = list(dict.fromkeys(r.get("run", "") for r in table))
    if len(runs) < 2:
        return ""
    held = [r for r in table if r["split"] == "heldout"]
    minutes = sorted({round(r["train_seconds"] / 60) for r in held})
    parts = []
    for minute in minutes:
        at = {r["run"]: r for r in held if round(r["train_seconds"] / 60) == minute}
        if len(at) == len(runs) and all("restarts+agent ratio" in r for r in at.values()):
            best = max(at, key=lambda run: at[run]["restarts+agent ratio"])
            ratios = ", ".join(f"{run} {at[run]['restarts+agent ratio']:.4f}" for run in runs)
            parts.append(f"at {minute} min {ratios} (best: {best})")
    rates = []
    for run in runs:
        last = [r for r in held if r["run"] == run][-1]
        per_minute = 60 / last["train_seconds"]
        learner, play = last["learner_steps"] * per_minute, last["self_play_steps"] * per_minute
        rates.append(f"{run} {learner:,.0f} learner and {play:,.0f} self-play steps per minute")
    return (
        "Restarts+agent's ratio to restarts on the held-out families at equal training time: "
        + "; ".join(parts)
        + ". Training rates on this machine: "
        + "; ".join(rates)
        + "."
    )


def markdown(result: dict, table: list[dict]) -> str:
    """The curve's table and how it was measured."""
    runs_compared = comparison(table)
    lines = [
        "# Learning curve",
        "",
        f"Written by `python -m mallocmuzero.benchmarks.learning_curve` on {result['written']}. "
        f"Every solver at {result['limit_s']:g} s per case, two jobs at a time, one core each. "
        "Speed-ups are over msa; a ratio is to restarts at the same limit, averaged over cases; "
        "wins count cases at least as good as restarts.",
        "",
        f"![learning curve]({result.get('figure', 'BENCHMARKS-curve.png')})",
        "",
        verdict(table),
        "",
        *([runs_compared, ""] if runs_compared else []),
        "| snapshot | split | learner steps | self-play steps | agent | agent / restarts | "
        "agent wins | restarts+agent | ratio | wins | restarts | restarts+beam |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['snapshot']} | {r['split']} | {r['learner_steps']:,} | "
            f"{r['self_play_steps']:,} | {r.get('agent speedup', float('nan')):.4f} | "
            f"{r.get('agent ratio', float('nan')):.4f} | {r.get('agent wins', '-')} | "
            f"{r.get('restarts+agent speedup', float('nan')):.4f} | "
            f"{r.get('restarts+agent ratio', float('nan')):.4f} | "
            f"{r.get('restarts+agent wins', '-')} | {r['restarts speedup']:.4f} | "
            f"{r['restarts+beam speedup']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot(table: list[dict], path: Path) -> None:
    """Ratio to restarts against training minutes, learner steps and self-play steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_keys = (("train_seconds", "training minutes", 1 / 60),
                 ("learner_steps", "learner steps", 1),
                 ("self_play_steps", "self-play steps", 1))  # fmt: skip
    runs = list(dict.fromkeys(r.get("run", "") for r in table))
    splits = ("heldout", "train") if len(runs) == 1 else ("heldout",)  # several: held out
    lines = [(run, split) for run in runs for split in splits]
    styles = ["-", ":"] if len(runs) == 1 else ["-", "--", ":", "-."][: len(lines)]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (key, label, scale) in zip(axes, axes_keys):
        for (run, split), style in zip(lines, styles):
            rows = [r for r in table if r["split"] == split and r.get("run", "") == run]
            for solver in ("agent", "restarts+agent"):
                points = [(r[key] * scale, r[f"{solver} ratio"]) for r in rows
                          if f"{solver} ratio" in r]  # fmt: skip
                if points:
                    name = f"{run}: {solver}" if run else solver
                    ax.plot(*zip(*points), style, marker="o", label=f"{name} ({split} families)")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xlabel(label)
    axes[0].set_ylabel("speed-up ratio to restarts")
    axes[0].legend(fontsize=7)
    figure.suptitle("Learning curve: the agent against restarts at the same time limit")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    """Run the curve and write its table, JSON and PNG beside ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", default=["runs/curve"],
                        help="run folder(s) with snapshots/; several share one table")  # fmt: skip
    parser.add_argument("--workloads", default="workloads/generated")
    parser.add_argument("--limit", type=float, default=5.0, help="seconds per case and solver")
    parser.add_argument("--cases", type=int, default=8, help="held-out-family cases")
    parser.add_argument("--out", default="BENCHMARKS-curve.md")
    parser.add_argument("--cache", default=".bench-curve.jsonl")
    args = parser.parse_args()
    say = lambda line: print(line, flush=True)  # noqa: E731
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    found = {}
    for run_dir in args.run:
        prefix = f"{Path(run_dir).name}: " if len(args.run) > 1 else ""
        kept = snapshots(Path(run_dir), prefix)
        if not kept:
            raise SystemExit(
                f"{run_dir}/snapshots holds no snapshot: train with run.snapshot_minutes"
            )
        found |= kept
    result = run(found, Path(args.workloads), args.limit, args.cases, Path(args.cache), say)
    result["written"], result["figure"] = written_on(), Path(args.out).with_suffix(".png").name
    table = summary(result)
    out = Path(args.out)
    write_json_atomic({**result, "summary": table}, out.with_suffix(".json"))
    plot(table, out.with_suffix(".png"))
    out.write_text(markdown(result, table))
    say(f"wrote {out}, {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
