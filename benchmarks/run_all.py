"""``make bench``: run every benchmark and write BENCHMARKS.md.

Speed figures are ratios against a baseline measured in the same run (these machines are
shared and noisy); quality figures are times of the cost model, which do not vary.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from mallocmuzero.benchmarks import agent_speed, baseline_quality, game_throughput
from mallocmuzero.env.workload import load_workload, write_json_atomic


def _fmt_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def quality_markdown(cases: list[baseline_quality.Case], budgets: dict[str, float]) -> str:
    """The baseline table: times relative to all-slow, cpsat's status, msa's headroom."""
    header = (
        ["workload", "buffers", "cap."]
        + [f"{c} speed-up" for c in baseline_quality.COLUMNS[1:]]
        + ["cpsat optimal", "bound speed-up", "msa headroom"]
    )
    rows = []
    for c in cases:
        t0 = c.times["all-slow"]
        rows.append(
            [c.workload, str(c.num_buffers), f"{c.fraction:g}"]
            + [f"{t0 / c.times[k]:.4f}" for k in baseline_quality.COLUMNS[1:]]
            + [
                "yes" if c.cpsat_optimal else "no",
                f"{t0 / c.cpsat_bound:.4f}" if c.cpsat_bound == c.cpsat_bound else "none",
                f"{c.msa_headroom:.2%}",
            ]
        )
    recovered = {
        k: [r for c in cases if (r := c.headroom_recovered(k)) is not None]
        for k in ("restarts", "beam16", "beam64", "cpsat")
    }
    with_headroom = sum(1 for c in cases if c.headroom_recovered("msa") is not None)
    summary = [
        f"- Cases: {len(cases)}; cpsat proved optimality in "
        f"{sum(c.cpsat_optimal for c in cases)}; msa leaves headroom in {with_headroom}.",
        "- Mean share of msa's headroom recovered, over the cases with headroom: "
        + ", ".join(f"{k} {np.mean(v):.0%}" for k, v in recovered.items() if v)
        + ".",
        f"- Budgets: restarts {budgets['restarts_s']:g} s, "
        f"beam up to {budgets['beam_limit_s']:g} s (the best completion so far is kept at "
        f"the limit), cpsat {budgets['cpsat_limit_s']:g} s on 2 workers.",
        "- Mean wall time per case: "
        + ", ".join(
            f"{k} {np.mean([c.seconds[k] for c in cases]):.1f} s"
            for k in ("msa", "restarts", "beam16", "beam64", "cpsat")
        )
        + ".",
    ]
    return _fmt_table(header, rows) + "\n\n" + "\n".join(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write BENCHMARKS.md")
    parser.add_argument("--workloads", default="workloads/builtin")
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--throughput-seconds", type=float, default=5.0)
    parser.add_argument("--restarts-seconds", type=float, default=5.0)
    parser.add_argument("--beam-limit-seconds", type=float, default=60.0)
    parser.add_argument("--cpsat-limit-seconds", type=float, default=30.0)
    parser.add_argument("--only", nargs="*", help="workload names (default: all)")
    parser.add_argument(
        "--cache", default=".bench-cache.jsonl", help="finished cases, reused by a rerun"
    )
    args = parser.parse_args()

    paths = sorted(Path(args.workloads).glob("*.json"))
    workloads = [load_workload(p) for p in paths]
    if args.only:
        workloads = [w for w in workloads if w.name in args.only]
    if not workloads:
        raise SystemExit(f"no workloads in {args.workloads}: run 'make workloads' first")
    started = time.time()
    print(f"[bench] game throughput over {len(workloads)} workloads ...", flush=True)
    tp = game_throughput.run(workloads, seconds=args.throughput_seconds)
    print(
        f"  batched {tp['batched_steps_per_s']:,.0f} steps/s, "
        f"single {tp['single_steps_per_s']:,.0f} steps/s, ratio {tp['ratio']:.1f}x",
        flush=True,
    )
    print("[bench] search and learner speed ...", flush=True)
    search = agent_speed.search_speed(workloads, seconds=args.throughput_seconds)
    learner = agent_speed.learner_speed(seconds=args.throughput_seconds)
    print(
        f"  search: core {search['core_sims_per_s']:,.0f} sims/s, "
        f"raw {search['raw_sims_per_s']:,.0f} sims/s ({search['ratio']:.0%}); "
        f"learner {learner['train_steps_per_s']:.1f} steps/s",
        flush=True,
    )
    print("[bench] baseline quality ...", flush=True)
    budgets = {
        "restarts_s": args.restarts_seconds,
        "beam_limit_s": args.beam_limit_seconds,
        "cpsat_limit_s": args.cpsat_limit_seconds,
    }
    cases = baseline_quality.run(
        workloads, **budgets, progress=lambda s: print(s, flush=True), cache=Path(args.cache)
    )

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    text = f"""# Benchmarks

Written by `make bench` ({time.strftime("%Y-%m-%d")}, {machine}, {time.time() - started:.0f} s).
Workloads: the built-in suite (`make workloads`), real XLA CPU compilations of JAX programs.
Hardware of cost model v1: 100 TFLOP/s, slow 1 TB/s, fast 10 TB/s.

## (a) Game throughput

Batched game of {tp["batch"]} slots over every built-in workload at capacity fractions drawn
from [0.05, 0.6], observations and masks included, against a single-game loop through the
same API in the same run. The kernels run on one thread, so these are per-core rates.

| loop | steps/s per core | ratio |
|---|---|---|
| single game | {tp["single_steps_per_s"]:,.0f} | 1.0 |
| batch of {tp["batch"]} | {tp["batched_steps_per_s"]:,.0f} | {tp["ratio"]:.1f} |

## (b) Baseline quality

Speed-up over all-slow (higher is better) of every baseline, for every workload at
capacity fractions 0.1, 0.25 and 0.5 of its placeable peak. msa headroom is msa's time
over the best known time (cpsat's optimum where proven), minus one.

{quality_markdown(cases, budgets)}

## (c) Search and learner speed

Default config (64 games, 16 simulations, latent 128, MLP 256x256), random parameters.
The self-play core (game step, batched search, bookkeeping) against the raw jitted mctx
call on the same network and batch, in the same run; and jitted learner steps on
synthetic batches of {learner["batch"]} ({learner["device"]}; XLA uses every core here).

| what | per second | ratio |
|---|---|---|
| raw search call | {search["raw_sims_per_s"]:,.0f} simulations | 1.00 |
| self-play core | {search["core_sims_per_s"]:,.0f} simulations | {search["ratio"]:.2f} |
| learner train step | {learner["train_steps_per_s"]:.1f} steps | |
"""
    Path(args.out).write_text(text)
    raw = {
        "throughput": tp,
        "search": search,
        "learner": learner,
        "quality": [c.__dict__ for c in cases],
    }
    write_json_atomic(raw, Path(args.out).with_suffix(".json"))
    print(f"[bench] wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
