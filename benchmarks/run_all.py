"""``make bench``: run every benchmark and write BENCHMARKS.md.

Speed figures are ratios against a baseline measured in the same run (these machines are
shared and noisy); quality figures are times of the cost model, which do not vary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from mallocmuzero.benchmarks import (
    agent_speed,
    anytime_profile,
    baseline_quality,
    distributed,
    external_yardsticks,
    game_throughput,
    pick_encoding,
)
from mallocmuzero.benchmarks.report import ABLATION_WEIGHTS, render
from mallocmuzero.benchmarks.tables import machine
from mallocmuzero.env.observation import SHIPPED_GAME
from mallocmuzero.env.workload import load_workload, write_json_atomic


def agent_quality(checkpoint: str, workloads: str, cpsat_limit_s: float, progress) -> list[dict]:
    """The shipped agent on the held-out programs at 0.1, 0.25 and 0.5 (``evaluate``)."""
    from mallocmuzero.actors.workload_sampler import load_split
    from mallocmuzero.agent.solve import load_agent
    from mallocmuzero.solvers.tournament import evaluate

    a = load_agent(checkpoint)
    heldout = load_split(workloads, "heldout")
    rows = evaluate(heldout, (0.1, 0.25, 0.5), partial(a.solve, samples=8),
                    cpsat_time_limit=cpsat_limit_s, progress=progress, pick=a.pick)  # fmt: skip
    return {
        "checkpoint": checkpoint,
        "meta": a.meta,
        "rows": [r.__dict__ for r in rows],
        "ablation": rollout_ablation(checkpoint, heldout, progress),
    }


def rollout_ablation(checkpoint: str, heldout: list, progress) -> list[dict]:
    """Greedy agent time per held-out case at each solve-time rollout weight."""
    from mallocmuzero.agent.solve import agent_search, load_agent
    from mallocmuzero.env.workload import resolve_capacity

    loaded = load_agent(checkpoint)
    agents = {
        weight: dataclasses.replace(
            loaded, searches=[agent_search(loaded.config, loaded.net, weight)]
        )
        for weight in ABLATION_WEIGHTS
    }
    rows = []
    for workload in heldout:
        for fraction in (0.1, 0.25, 0.5):
            w = resolve_capacity(workload, fraction=fraction)
            times = {str(weight): a.solve(w).estimated_time_s for weight, a in agents.items()}
            rows.append({"workload": w.name, "fraction": fraction, "times": times})
            progress(f"[ablation] {w.name}@{fraction:g}: {times}")
    return rows


SECTIONS = (
    "throughput",
    "search",
    "quality",
    "scaling",
    "soak",
    "agent",
    "yardsticks",
    "encoding",
    "anytime",
)
STORED_AS = {"scaling": ("distributed", "actors1"), "soak": ("distributed", "soak")}


def has_section(raw: dict, section: str) -> bool:
    """Whether the raw results hold ``section``."""
    key, inner = STORED_AS.get(section, (section, None))
    return key in raw and (inner is None or inner in raw[key])


def parse_args() -> argparse.Namespace:
    """The command line of ``run_all``."""
    parser = argparse.ArgumentParser(description="Run the benchmarks and write BENCHMARKS.md")
    parser.add_argument("--workloads", default="workloads/builtin")
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--throughput-seconds", type=float, default=5.0)
    parser.add_argument("--restarts-seconds", type=float, default=5.0)
    parser.add_argument("--beam-limit-seconds", type=float, default=60.0)
    parser.add_argument("--cpsat-limit-seconds", type=float, default=30.0)
    parser.add_argument("--scaling-minutes", type=float, default=3.0)
    parser.add_argument("--soak-minutes", type=float, default=22.0)
    parser.add_argument("--encoding-seconds", type=float, default=5.0)
    parser.add_argument(
        "--agents",
        nargs="*",
        default=["agent=checkpoints/pretrained", "agent v1=checkpoints/pretrained_v1"],
        help="LABEL=CHECKPOINT of each agent in the anytime profile",
    )
    parser.add_argument(
        "--beam-pick",
        default=f"{SHIPPED_GAME.pick_candidates},{SHIPPED_GAME.pick_encoding}",
        help="K,ENCODING of the profile's beam (default: the shipped game's)",
    )
    parser.add_argument("--checkpoint", default="checkpoints/pretrained")
    parser.add_argument(
        "--minimalloc",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "workloads" / "minimalloc"),
        help="MiniMalloc's challenging instances (default: ../shared beside the checkout)",
    )
    parser.add_argument("--only", nargs="*", help="workload names (default: all)")
    parser.add_argument(
        "--sections",
        nargs="*",
        choices=SECTIONS,
        help="rerun only these; the others keep their results from the .json beside --out",
    )
    parser.add_argument(
        "--cache", default=".bench-cache.jsonl", help="finished cases, reused by a rerun"
    )
    return parser.parse_args()


def _run_game_v2_sections(
    args: argparse.Namespace,
    workloads: list,
    sections: tuple,
    raw: dict,
    raw_path: Path,
    say: Callable[[str], None],
) -> None:
    """Sections (g) and (h): game v2's pick encoding, and the anytime profile."""
    if "encoding" in sections:
        say("[bench] game v2: beam over each pick encoding against restarts ...")
        rows = pick_encoding.run(workloads, Path(args.minimalloc), args.encoding_seconds, say,
                                 cache=Path(".bench-encoding.jsonl"))  # fmt: skip
        raw["encoding"] = {"limit_s": args.encoding_seconds, "rows": rows,
                           "summary": pick_encoding.summary(rows)}  # fmt: skip
        write_json_atomic(raw, raw_path)
    if "anytime" in sections:
        say("[bench] the anytime profile: every search solver at 1, 5 and 20 s ...")
        agents = dict(a.split("=", 1) for a in args.agents)
        k, encoding = args.beam_pick.split(",")
        rows = anytime_profile.run(workloads, agents, (int(k), encoding), Path(args.minimalloc),
                                   say, cache=Path(".bench-anytime.jsonl"))  # fmt: skip
        raw["anytime"] = {"rows": rows, "beam_pick": [int(k), encoding]}
        anytime_profile.plot(rows, Path(args.out).with_name("BENCHMARKS-anytime.png"))
        write_json_atomic(raw, raw_path)


def main() -> None:
    """Run the chosen sections and write BENCHMARKS.md and BENCHMARKS.json."""
    args = parse_args()

    paths = sorted(Path(args.workloads).glob("*.json"))
    workloads = [load_workload(p) for p in paths]
    if args.only:
        workloads = [w for w in workloads if w.name in args.only]
    if not workloads:
        raise SystemExit(f"no workloads in {args.workloads}: run 'make workloads' first")
    raw_path = Path(args.out).with_suffix(".json")
    sections = args.sections or SECTIONS
    raw = json.loads(raw_path.read_text()) if args.sections and raw_path.exists() else {}
    missing = [s for s in SECTIONS if s not in sections and not has_section(raw, s)]
    if missing:
        raise SystemExit(f"{raw_path} has no results for {missing}: run them too")
    started = time.time()
    say = lambda line: print(line, flush=True)  # noqa: E731
    if "throughput" in sections:
        say(f"[bench] game throughput over {len(workloads)} workloads ...")
        tp = raw["throughput"] = game_throughput.run(workloads, seconds=args.throughput_seconds)
        say(f"  batched {tp['batched_steps_per_s']:,.0f} steps/s, single "
            f"{tp['single_steps_per_s']:,.0f} steps/s, ratio {tp['ratio']:.1f}x")  # fmt: skip
    if "search" in sections:
        say("[bench] search and learner speed ...")
        raw["search"] = agent_speed.search_speed(workloads, seconds=args.throughput_seconds)
        raw["search"]["one_cpu"] = agent_speed.one_cpu_search_speed(
            args.workloads, seconds=args.throughput_seconds
        )
        raw["learner"] = agent_speed.learner_speed(seconds=args.throughput_seconds)
        sp, lr = raw["search"], raw["learner"]
        say(f"  search: core {sp['core_sims_per_s']:,.0f} sims/s ({sp['ratio']:.0%} of raw), "
            f"with lookahead {sp['core_lookahead_sims_per_s']:,.0f} "
            f"({sp['ratio_lookahead']:.0%}; one thread {sp['one_cpu']['ratio_lookahead']:.0%}); "
            f"learner {lr['train_steps_per_s']:.1f} steps/s")  # fmt: skip
    budgets = {
        "restarts_s": args.restarts_seconds,
        "beam_limit_s": args.beam_limit_seconds,
        "cpsat_limit_s": args.cpsat_limit_seconds,
    }
    if "quality" in sections:
        say("[bench] baseline quality ...")
        cases = baseline_quality.run(workloads, **budgets, progress=say, cache=Path(args.cache))
        raw["quality"] = [c.__dict__ for c in cases]
        raw["budgets"] = budgets
        write_json_atomic(raw, raw_path)  # a later failure keeps what is done
    if "scaling" in sections:
        scaled = distributed.scaling(args.workloads, args.scaling_minutes, progress=say)
        raw.setdefault("distributed", {}).update(scaled)
        write_json_atomic(raw, raw_path)
    if "soak" in sections:
        raw.setdefault("distributed", {})["soak"] = distributed.soak(
            args.workloads, args.soak_minutes, progress=say
        )
        write_json_atomic(raw, raw_path)
    if "agent" in sections:
        say(f"[bench] the agent of {args.checkpoint} on the held-out programs ...")
        raw["agent"] = agent_quality(args.checkpoint, args.workloads, args.cpsat_limit_seconds, say)
    if "yardsticks" in sections:
        say(f"[bench] external yardsticks: MiniMalloc's challenging instances in {args.minimalloc}")
        raw["yardsticks"] = external_yardsticks.run(
            Path(args.minimalloc), progress=say, cache=Path(".bench-yardsticks.jsonl")
        )
        write_json_atomic(raw, raw_path)
    _run_game_v2_sections(args, workloads, sections, raw, raw_path, say)
    raw["written"] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "seconds": time.time()
        - started
        + (raw.get("written", {}).get("seconds", 0) if args.sections else 0),
        "sections": list(sections),
    }
    Path(args.out).write_text(render(raw))
    write_json_atomic(raw, raw_path)
    say(f"[bench] wrote {args.out}")


if __name__ == "__main__":
    main()
