"""A scale model of the distributed system, built from measured parts, checked on real runs.

Inputs, each measured by its own benchmark on the same machine: the learner's steps/s per
batch size and the host's sampling ceiling (``learner_throughput``), the replay server's
insert ceiling (``replay_ceiling``), the broadcast's cost per publish against the number
of subscribers (``broadcast``), and real local runs with 1 and 2 actors (this module,
``--minutes``), which give one actor's self-play rate per core.

For N actors of ``c`` CPUs each, at batch B, ``spi`` samples per insert and one sequence
per ``period`` steps, the model predicts:

- self-play steps/s ``S = N * r * c``, where the actors have their cores to themselves (a
  cluster) or ``N * r * min(c, free / N)`` where they share ``free`` cores with the other
  roles (one machine);
- the learner steps/s that keep the ratio, ``S / period * spi / B``; when that is above
  what the learner can take (its rate less the broadcast's cost per call) or above what
  the host samples, the rate limiter slows the actors to match;
- the replay inserts ``S / period``, capped by the server's measured ceiling (per shard).

It names the first component to saturate and, per cluster size, the settings that keep
the learner fed: the smallest batch whose learner keeps up, the shards the inserts need,
and learner steps per call so that publishing costs under 5% of the learner's time.

    python -m mallocmuzero.benchmarks.scale_model --workloads workloads/builtin --minutes 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np

from mallocmuzero.benchmarks.tables import markdown_table, written_on
from mallocmuzero.env.workload import write_json_atomic

ACTOR_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
PUBLISH_SHARE = 0.05  # of the learner's time, at most, spent publishing


def broadcast_cost_s(broadcast: dict, n: int) -> float:
    """The learner's cost per publish to ``n`` subscribers: a line fitted to the measured."""
    rows = broadcast["rows"]
    slope, intercept = np.polyfit([r["subscribers"] for r in rows], [r["cost_ms"] for r in rows], 1)
    return max(intercept + slope * n, min(r["cost_ms"] for r in rows)) / 1e3


def predict(n: int, parts: dict, batch: int, free_cores: float | None = None,
            shards: int = 1, steps_per_call: int = 20) -> dict:  # fmt: skip
    """The model's figures for ``n`` actors (see the module's docstring)."""
    c, spi, period = parts["actor_cpus"], parts["samples_per_insert"], parts["period"]
    per_actor = c if free_cores is None else min(c, free_cores / n)
    demand = n * parts["steps_per_core"] * per_actor
    learner = parts["learner_steps_per_s"][batch]
    publish = broadcast_cost_s(parts["broadcast"], n)
    learner_cap = learner / (1 + learner * publish / steps_per_call)
    limits = {
        "actors": demand,
        "learner": learner_cap * batch / spi * period,
        "sampling": parts["sampling_batches_per_s"][batch] * batch / spi * period,
        "replay inserts": parts["inserts_per_s"] * shards * period,
    }
    binding = min(limits, key=limits.get)
    steps = limits[binding]
    return {"actors": n, "batch": batch, "self_play_steps_per_s": steps,
            "learner_steps_per_s": steps / period * spi / batch, "saturates": binding,
            "demand_steps_per_s": demand, "publish_ms": publish * 1e3}  # fmt: skip


def recommend(n: int, parts: dict) -> dict:
    """Settings that keep a cluster of ``n`` actors' learner fed, or say what limits it.

    For each batch size (smallest first): the replay shards that what the learner can take
    needs, then the model's outcome; the first batch whose learner keeps up with the
    actors wins, else the one with the most throughput.
    """
    outcomes = []
    for batch in sorted(parts["learner_steps_per_s"]):
        learner = parts["learner_steps_per_s"][batch]
        steps_per_call = max(20, math.ceil(learner * broadcast_cost_s(parts["broadcast"], n)
                                           / PUBLISH_SHARE))  # fmt: skip
        unsharded = predict(n, parts, batch, shards=10**9, steps_per_call=steps_per_call)
        items = unsharded["self_play_steps_per_s"] / parts["period"]
        shards = max(1, math.ceil(items / (0.8 * parts["inserts_per_s"])))
        outcome = predict(n, parts, batch, shards=shards, steps_per_call=steps_per_call)
        outcomes.append({**outcome, "shards": shards, "steps_per_call": steps_per_call})
        if outcome["saturates"] == "actors":
            return {**outcomes[-1], "learner_keeps_up": True}
    best = max(outcomes, key=lambda o: o["self_play_steps_per_s"])
    return {**best, "learner_keeps_up": False}


def actors_cores(run: dict, parts: dict) -> float:
    """The cores a real run's actors had on this machine: what the other roles left.

    All but the learner's busy share (its steps/s over its measured rate at batch 64) and
    the declared CPUs of the replay server and evaluator.
    """
    return parts["free_cores_here"] - run["learner_steps_per_s"] / parts["learner_steps_per_s"][64]


def calibrate(runs: dict, parts: dict) -> float:
    """One actor's self-play steps/s per core, from the 1-actor run on this machine."""
    one = runs["actors1"]
    return one["self_play_steps_per_s"] / min(1.0, actors_cores(one, parts))


def measured_runs(workloads: str, minutes: float, progress=print) -> dict:
    """Real local runs: 1 and 2 actors, and 2 actors without prefetching (before)."""
    from mallocmuzero.benchmarks.distributed import measured_run

    runs = {}
    for name, overrides in (("actors1", {"actors.num_actors": 1}),
                            ("actors2", {"actors.num_actors": 2}),
                            ("actors2_no_prefetch", {"actors.num_actors": 2,
                                                     "learner.prefetch_batches": 0})):  # fmt: skip
        progress(f"[scale] real run {name}, {minutes:g} min ...")
        runs[name] = measured_run(workloads, minutes, overrides)
        progress(f"[scale] {name}: {json.dumps(runs[name])}")
    return runs


def build(folder: Path, runs: dict) -> dict:
    """The model's inputs from the benchmarks' JSON files in ``folder`` and ``runs``."""
    from mallocmuzero.configs.schema import ExperimentConfig

    learner = json.loads((folder / "BENCHMARKS-learner.json").read_text())
    replay = json.loads((folder / "BENCHMARKS-replay.json").read_text())
    broadcast = json.loads((folder / "BENCHMARKS-broadcast.json").read_text())
    config = ExperimentConfig()
    parts = {
        "actor_cpus": config.actors.num_cpus,
        "samples_per_insert": config.replay.samples_per_insert,
        "period": config.replay.period,
        "learner_steps_per_s": {r["batch"]: r["after"]["steps_per_s"] for r in learner["rows"]},
        "sampling_batches_per_s": {r["batch"]: r["sampling_per_s"] for r in learner["rows"]},
        # What one core of the server inserts: its measured inserts per CPU-second. On two
        # shared cores the writers saturate the machine long before the server.
        "inserts_per_s": max(
            r["inserts_per_s"] / max(r["server_cpu_share"], 1e-3) for r in replay["rows"]
        ),  # fmt: skip
        "broadcast": broadcast,
    }
    others = config.replay.num_cpus + config.evaluator.num_cpus
    parts["free_cores_here"] = (os.cpu_count() or 1) - others
    parts["steps_per_core"] = calibrate(runs, parts)
    return parts


def validation(parts: dict, runs: dict) -> list[dict]:
    """The model against the real runs on this machine (shared cores): its error."""
    rows = []
    for name in ("actors1", "actors2"):
        run = runs[name]
        model = predict(run["actors"], parts, 64, free_cores=actors_cores(run, parts))
        measured, predicted = run["self_play_steps_per_s"], model["self_play_steps_per_s"]
        rows.append({"actors": run["actors"], "measured": measured, "predicted": predicted,
                     "error": predicted / measured - 1})  # fmt: skip
    return rows


def plot(table: list[dict], checks: list[dict], path: Path) -> None:
    """Predicted self-play steps/s against N per batch size, the measured points on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    wanted = [r for r in table if r["batch"] == table[0]["batch"]]
    ax.plot([r["actors"] for r in wanted], [r["demand_steps_per_s"] for r in wanted], "k--",
            lw=1, label="what the actors could play (no other limit)")  # fmt: skip
    for batch in sorted({r["batch"] for r in table}):
        rows = [r for r in table if r["batch"] == batch]
        ax.plot([r["actors"] for r in rows], [r["self_play_steps_per_s"] for r in rows],
                marker="o", ms=3, label=f"model, cluster, CPU learner, batch {batch}")  # fmt: skip
    ax.scatter([c["actors"] for c in checks], [c["measured"] for c in checks], color="k",
               zorder=5, label="measured here (2 shared cores)")  # fmt: skip
    ax.scatter([c["actors"] for c in checks], [c["predicted"] for c in checks], marker="x",
               color="r", zorder=6, label="model here (2 shared cores)")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="self-play actors N",
           ylabel="self-play steps/s", title="Predicted throughput against actors")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def model_tables(parts: dict) -> tuple[list[dict], list[dict]]:
    """Predictions for every N and batch; recommendations for 16-, 64- and 256-core clusters."""
    table = [predict(n, parts, b) for b in sorted(parts["learner_steps_per_s"])
             for n in ACTOR_COUNTS]  # fmt: skip
    others = (os.cpu_count() or 1) - parts["free_cores_here"]  # replay server and evaluator
    clusters = []
    for cores in (16, 64, 256):
        actors = max(1, int((cores - others) // parts["actor_cpus"]))
        clusters.append({"cores": cores, **recommend(actors, parts)})
    return table, clusters


def markdown(result: dict) -> str:
    """The model's tables, its validation and its reading."""
    parts, table = result["parts"], result["table"]
    by_n = {}
    for r in table:
        by_n.setdefault(r["actors"], {})[r["batch"]] = r
    batches = sorted({r["batch"] for r in table})
    header = ["actors N", "self-play steps/s wanted"] + [
        f"batch {b}: steps/s (saturates)" for b in batches]  # fmt: skip
    cells = [[str(n), f"{rows[batches[0]]['demand_steps_per_s']:,.0f}"] + [
        f"{rows[b]['self_play_steps_per_s']:,.0f} ({rows[b]['saturates']})" for b in batches]
        for n, rows in by_n.items()]  # fmt: skip
    checks = [[str(c["actors"]), f"{c['measured']:,.0f}", f"{c['predicted']:,.0f}",
               f"{c['error']:+.0%}"] for c in result["validation"]]  # fmt: skip
    advice = [[str(c["cores"]), str(c["actors"]), str(c["batch"]), str(c["shards"]),
               str(c["steps_per_call"]), f"{c['self_play_steps_per_s']:,.0f}",
               f"{c['learner_steps_per_s']:.1f}", c["saturates"]]
              for c in result["clusters"]]  # fmt: skip
    runs = result["runs"]
    waits = " and ".join(
        f"{runs[k]['replay_wait_fraction']:.0%} {label}"
        for k, label in (("actors2_no_prefetch", "without prefetching"),
                         ("actors2", "with it (the default)")) if k in runs)  # fmt: skip
    return (
        "# Scale model\n\n"
        f"Written {result['written']} by `python -m mallocmuzero.benchmarks.scale_model`. "
        f"Inputs measured on this machine: one actor's self-play rate "
        f"{parts['steps_per_core']:,.0f} steps/s per core (from the 1-actor run), the CPU "
        "learner's steps/s per batch and the host's sampling ceiling "
        "([BENCHMARKS-learner.md](BENCHMARKS-learner.md)), one Reverb server's insert "
        f"ceiling {parts['inserts_per_s']:,.0f} sequences/s (its measured inserts per "
        "CPU-second of the server process, for one busy core; "
        "[BENCHMARKS-replay.md](BENCHMARKS-replay.md)), the "
        "broadcast's cost against subscribers "
        "([BENCHMARKS-broadcast.md](BENCHMARKS-broadcast.md)); "
        f"{parts['samples_per_insert']:g} sample per insert, a sequence every "
        f"{parts['period']} step, {parts['actor_cpus']:g} CPU per actor. No GPU was lent: the "
        "learner figures are this CPU's; with an accelerator, run `learner_throughput` on "
        "it and this model again.\n\n"
        "## Validation on this machine\n\n"
        f"Real local runs ({result['minutes']:g} min each, default config) against the model "
        "told that the actors share this machine's cores with the other roles. In the "
        f"2-actor run the learner waited for replay {waits}.\n\n"
        + markdown_table(["actors", "measured steps/s", "model steps/s", "model error"], checks)
        + "\n\n## Predicted throughput on a cluster (each actor its own CPU)\n\n"
        + markdown_table(header, cells)
        + "\n\n![predicted throughput](BENCHMARKS-scale.png)\n\n"
        "## Settings that keep the learner fed\n\n"
        "Per cluster size (cores less the replay server's and evaluator's, one actor per "
        "CPU, one learner): the smallest batch whose learner keeps up with the actors, "
        "replay shards for the inserts (80% of one server's ceiling each), and learner "
        f"steps per call so that publishing takes under {PUBLISH_SHARE:.0%} of the "
        "learner's time.\n\n"
        + markdown_table(
            [
                "cores",
                "actors",
                "batch",
                "replay shards",
                "learner steps per call",
                "self-play steps/s",
                "learner steps/s",
                "saturates first",
            ],
            advice,
        )
        + "\n"
    )


def main() -> None:
    """Measure the real runs, build the model from the benchmarks' files, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="workloads/builtin")
    parser.add_argument("--minutes", type=float, default=3.0, help="per real run")
    parser.add_argument("--inputs", default=".", help="folder of the benchmarks' JSON files")
    parser.add_argument("--runs", help="a JSON of earlier real runs (skips measuring them)")
    parser.add_argument("--out", default="BENCHMARKS-scale.md")
    args = parser.parse_args()
    say = lambda line: print(line, flush=True)  # noqa: E731
    out = Path(args.out)
    if args.runs:
        runs = json.loads(Path(args.runs).read_text())
    else:
        runs = measured_runs(args.workloads, args.minutes, say)
        write_json_atomic(runs, out.with_name(out.stem + "-runs.json"))
    parts = build(Path(args.inputs), runs)
    table, clusters = model_tables(parts)
    checks = validation(parts, runs)
    result = {"parts": parts, "table": table, "clusters": clusters, "validation": checks,
              "runs": runs, "minutes": args.minutes, "written": written_on()}  # fmt: skip
    write_json_atomic(result, out.with_suffix(".json"))
    plot(table, checks, out.with_suffix(".png"))
    out.write_text(markdown(result))
    say(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
