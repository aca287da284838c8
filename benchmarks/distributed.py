"""The distributed runner measured: actor scaling, flow control and a memory soak.

Each figure comes from a real local run (Ray runtime, Reverb server, learner, actors)
read back from the run's own TensorBoard events, averaged over the second half of the
run (after compilation): total self-play steps per second with 1 and 2 actors (their
ratio shows scaling on this machine), the fraction of learner time spent waiting for
replay, and the achieved sample-to-insert ratio against the configured one. The soak
records the resident memory of every process of the run shortly after the start and at
the end.
"""

from __future__ import annotations

import collections
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from mallocmuzero.cluster.launch import train_distributed
from mallocmuzero.configs.schema import ExperimentConfig, with_values


def read_scalars(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Every scalar of a run's TensorBoard events as (wall time, value) pairs."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    out = {}
    for tag in events.Tags()["tensors"]:
        values = [(e.wall_time, tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        if values and np.ndim(values[0][1]) == 0 and values[0][1].dtype.kind == "f":
            out[tag] = [(t, float(v)) for t, v in values]
    return out


def late_mean(series: list[tuple[float, float]]) -> float:
    """Mean over the second half of the run's wall time."""
    if not series:
        return float("nan")
    start, end = series[0][0], series[-1][0]
    late = [v for t, v in series if t >= (start + end) / 2]
    return float(np.mean(late))


def process_role(cmdline: list[str], name: str) -> tuple[str, str]:
    """(role, method it runs now) from a process's command line.

    Ray titles an actor's process ``ray::ReplayService.checkpoint`` while the method runs
    and ``ray::ReplayService`` when idle; other processes are named by their program.
    """
    title = " ".join(cmdline)
    if title.startswith("ray::"):
        role, _, method = title.split()[0][5:].partition(".")
        return role, method
    for part in cmdline[:3]:
        stem = Path(part).name
        if stem.endswith(".py"):
            return stem[:-3], ""
    return name, ""


class MemorySampler(threading.Thread):
    """Samples the resident memory of this process and all its descendants."""

    def __init__(self, interval_s: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval_s
        # (seconds since start, {pid: (role, method, resident MiB)})
        self.samples: list[tuple[float, dict[int, tuple[str, str, float]]]] = []
        self._halt = threading.Event()

    @staticmethod
    def snapshot() -> dict[int, tuple[str, str, float]]:
        """Pid -> (role, method running, resident MiB)."""
        import psutil

        me = psutil.Process()
        found = {me.pid: ("driver", "", me.memory_info().rss / 2**20)}
        for p in me.children(recursive=True):
            try:
                role, method = process_role(p.cmdline(), p.name())
                found[p.pid] = (role, method, p.memory_info().rss / 2**20)
            except psutil.Error:
                continue
        return found

    def run(self) -> None:
        """Sample every ``interval`` seconds until stopped."""
        started = time.monotonic()
        while not self._halt.wait(self.interval):
            self.samples.append((time.monotonic() - started, self.snapshot()))

    def stop(self) -> None:
        """Stop sampling."""
        self._halt.set()
        self.join()


def memory_table(
    samples: list[tuple[float, dict[int, tuple[str, str, float]]]],
    from_s: float,
    until_s: float = float("inf"),
) -> list[dict[str, Any]]:
    """Per process alive from ``from_s`` to ``until_s``: resident MiB then, at the end, min, max.

    ``until_s`` keeps the run's stop (final checkpoint, shutdown) out of the window.
    Samples taken while the replay server writes a checkpoint (its title says
    ``checkpoint``) are left out of its steady figures and reported as its checkpoint peak.
    ``flat`` means every steady sample from ``from_s`` on is within 5% of the first one.
    """
    late = [(t, snap) for t, snap in samples if from_s <= t <= until_s]
    if not late:
        return []
    first, last = late[0][1], late[-1][1]
    rows, seen = [], collections.Counter()
    for pid in sorted(set(first) & set(last), key=lambda p: (first[p][0], p)):
        role = first[pid][0]
        seen[role] += 1
        steady = [snap[pid][2] for _, snap in late if pid in snap and snap[pid][1] != "checkpoint"]
        during = [snap[pid][2] for _, snap in late if pid in snap and snap[pid][1] == "checkpoint"]
        if not steady:
            continue
        start = steady[0]
        per_minute = {int(t // 60): snap[pid][2] for t, snap in late if pid in snap}
        rows.append({
            "process": role if seen[role] == 1 else f"{role} #{seen[role]}",
            "at_start": start, "end": steady[-1], "min": min(steady), "max": max(steady),
            "growth": steady[-1] / start - 1,
            "flat": max(abs(v / start - 1) for v in steady) <= 0.05,
            "checkpoint_peak": max(during) if during else None,
            "checkpoint_samples": len(during),
            "per_minute": sorted(per_minute.items()),  # (minute, MiB), the last sample of each
        })  # fmt: skip
    return rows


def measured_run(
    workloads: str,
    minutes: float,
    overrides: dict[str, Any],
    memory: bool = False,
    memory_from_minute: float = 5.0,
):
    """One local distributed run; returns its late-run figures (and memory samples)."""
    config = with_values(
        ExperimentConfig(),
        {
            "workloads.dir": workloads,
            "run.max_minutes": minutes,
            "run.log_interval_s": 10.0,
            "run.checkpoint_interval_minutes": 1e9,
            "evaluator.interval_s": 1e9,
            **overrides,
        },
    )
    sampler = MemorySampler() if memory else None
    with tempfile.TemporaryDirectory(prefix="mmz-bench-") as folder:
        run = Path(folder) / "run"
        if sampler:
            sampler.start()
        started = time.monotonic()
        try:
            train_distributed(config, str(run), progress=lambda line: None)
        finally:
            if sampler:
                sampler.stop()
        ran = (time.monotonic() - started) / 60
        if ran < 0.95 * minutes:  # stopped by a signal: its figures would mislead
            raise RuntimeError(f"the run stopped after {ran:.1f} of {minutes:g} minutes")
        scalars = read_scalars(run)
    result = {
        "actors": config.actors.num_actors,
        "minutes": minutes,
        "self_play_steps_per_s": late_mean(scalars.get("self_play/steps_per_s", [])),
        "learner_steps_per_s": late_mean(scalars.get("learner/steps_per_s", [])),
        "replay_wait_fraction": late_mean(scalars.get("learner/replay_wait_fraction", [])),
        "samples_per_insert": late_mean(scalars.get("replay/samples_per_insert", [])),
        "configured_samples_per_insert": config.replay.samples_per_insert,
        "policy_lag": late_mean(scalars.get("policy_lag", [])),
    }
    if sampler:
        result["memory_from_minute"] = memory_from_minute
        # The sampler starts before Ray does and the run's clock after its start-up, so
        # ``minutes`` after the sampler's start is still inside the run, before its stop.
        result["memory_mib"] = memory_table(sampler.samples, memory_from_minute * 60, minutes * 60)
        result["memory_minutes"] = minutes
        full = [t for t, v in scalars.get("replay/size", []) if v >= config.replay.max_size]
        first_log = scalars.get("replay/size", [(0.0, 0.0)])[0][0]
        result["table_full_minute"] = (min(full) - first_log) / 60 if full else None
        result["replay_max_size"] = config.replay.max_size
    return result


def scaling(workloads: str, minutes: float = 3.0, progress=print) -> dict[str, Any]:
    """Total self-play throughput with 1 and 2 actors."""
    results = {}
    for actors in (1, 2):
        progress(f"[bench] distributed: {actors} actor(s), {minutes:g} min ...")
        results[f"actors{actors}"] = measured_run(workloads, minutes, {"actors.num_actors": actors})
        progress(f"  {results[f'actors{actors}']['self_play_steps_per_s']:,.0f} steps/s")
    return results


def soak(workloads: str, minutes: float = 22.0, progress=print) -> dict[str, Any]:
    """A long run with 2 actors, the evaluator and checkpoints, with memory samples.

    The replay table (50,000 sequences here) fills within the first minutes; memory is
    judged from minute 5 to the end, every process sampled every 2 s.
    """
    progress(f"[bench] distributed soak: 2 actors, {minutes:g} min ...")
    return measured_run(
        workloads,
        minutes,
        {
            "actors.num_actors": 2,
            "run.checkpoint_interval_minutes": 3.0,
            "evaluator.interval_s": 120.0,
            "replay.max_size": 50_000,  # full within the first minutes
        },  # fmt: skip
        memory=True,
    )


def memory_markdown(soak: dict[str, Any]) -> list[str]:
    """The soak's memory table and its reading."""
    rows = [m for m in soak.get("memory_mib", []) if m["max"] >= 20]
    lines = [
        f"| `{m['process']}` | {m['at_start']:,.0f} | {m['end']:,.0f} | {m['min']:,.0f} | "
        f"{m['max']:,.0f} | {m['growth']:+.1%} | {'yes' if m['flat'] else '**no**'} | "
        + (f"{m['checkpoint_peak']:,.0f} ({m['checkpoint_samples']} samples)"
           if m["checkpoint_peak"] else "") + " |"
        for m in rows
    ]  # fmt: skip
    full = soak.get("table_full_minute")
    at = soak.get("memory_from_minute", 5.0)
    flat = sum(m["flat"] for m in rows)
    return [
        f"Resident memory of every process of the {soak['minutes']:g}-minute soak (MiB, "
        f"processes of 20 MiB and over), sampled every 2 s, from minute {at:g} to the end "
        f"({soak.get('memory_minutes', 0):.1f} min). The replay table held its "
        f"`replay.max_size` = {soak.get('replay_max_size', 0):,} sequences from minute "
        + (f"{full:.1f}" if full is not None else "(never)")
        + ". Samples taken while the replay server wrote a checkpoint (Reverb serialises the "
        "table) are left out of its steady figures and given as its checkpoint peak. Flat: "
        "every steady sample within 5% of the minute-"
        f"{at:g} value. {flat} of {len(rows)} processes are flat.",
        "",
        f"| process | minute {at:g} | end | min | max | end vs minute {at:g} | flat | "
        "peak during a checkpoint |",
        "|---|---|---|---|---|---|---|---|",
        *lines,
    ]


def markdown(results: dict[str, Any]) -> str:
    """The distributed section of BENCHMARKS.md."""
    one, two, soak = results["actors1"], results["actors2"], results["soak"]

    def row(label: str, r: dict[str, Any]) -> str:
        return (
            f"| {label} | {r['self_play_steps_per_s']:,.0f} | "
            f"{r['self_play_steps_per_s'] / one['self_play_steps_per_s']:.2f} | "
            f"{r['learner_steps_per_s']:.1f} | {r['replay_wait_fraction']:.0%} | "
            f"{r['samples_per_insert']:.2f} (configured {r['configured_samples_per_insert']:g}) | "
            f"{r['policy_lag']:.0f} |"
        )

    return "\n".join(
        [
            "| actors | self-play steps/s (total) | ratio to 1 actor | learner steps/s | "
            "learner time waiting for replay | achieved samples per insert | policy lag (steps) |",
            "|---|---|---|---|---|---|---|",
            row("1", one),
            row("2", two),
            row(f"2, soak of {soak['minutes']:g} min", soak),
            "",
            *memory_markdown(soak),
        ]
    )
