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

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from mallocmuzero.cluster.launch import train_distributed
from mallocmuzero.configs import default


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


class MemorySampler(threading.Thread):
    """Samples the resident memory of this process and all its descendants."""

    def __init__(self, interval_s: float = 10.0, warmup_s: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.interval, self.warmup = interval_s, warmup_s
        self.samples: list[tuple[float, dict[int, tuple[str, float]]]] = []  # (seconds, snap)
        self._halt = threading.Event()

    @staticmethod
    def snapshot() -> dict[int, tuple[str, float]]:
        """Pid -> (process title, resident MiB)."""
        import psutil

        me = psutil.Process()
        found = {}
        for p in [me, *me.children(recursive=True)]:
            try:
                title = " ".join(p.cmdline())[:48] or p.name()
                found[p.pid] = (title, p.memory_info().rss / 2**20)
            except psutil.Error:
                continue
        return found

    def run(self) -> None:
        """Sample every ``interval`` seconds after ``warmup`` seconds until stopped."""
        started = time.monotonic()
        while not self._halt.wait(self.interval):
            if time.monotonic() - started >= self.warmup:
                self.samples.append((time.monotonic() - started, self.snapshot()))

    def table(self) -> list[dict[str, Any]]:
        """Per process alive throughout: resident MiB at the start, the middle and the end."""
        first, middle, last = (self.samples[i][1] for i in (0, len(self.samples) // 2, -1))
        return [
            {"process": title, "start": first[pid][1], "middle": middle[pid][1], "end": rss}
            for pid, (title, rss) in sorted(last.items())
            if pid in first and pid in middle
        ]

    def stop(self) -> None:
        """Stop sampling."""
        self._halt.set()
        self.join()


def measured_run(workloads: str, minutes: float, overrides: dict[str, Any], memory: bool = False):
    """One local distributed run; returns its late-run figures (and memory samples)."""
    config = default.get_config()
    config.workloads.dir = workloads
    config.run.max_minutes = minutes
    config.run.log_interval_s = 10.0
    config.run.checkpoint_interval_minutes = 1e9
    config.evaluator.interval_s = 1e9
    for key, value in overrides.items():
        section, name = key.split(".")
        config[section][name] = value
    sampler = MemorySampler() if memory else None
    with tempfile.TemporaryDirectory(prefix="mmz-bench-") as folder:
        run = Path(folder) / "run"
        if sampler:
            sampler.start()
        try:
            train_distributed(config, str(run), progress=lambda line: None)
        finally:
            if sampler:
                sampler.stop()
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
        result["memory_mib"] = sampler.table()
        result["memory_seconds"] = [
            sampler.samples[i][0] for i in (0, len(sampler.samples) // 2, -1)
        ]
    return result


def scaling(workloads: str, minutes: float = 3.0, progress=print) -> dict[str, Any]:
    """Total self-play throughput with 1 and 2 actors."""
    results = {}
    for actors in (1, 2):
        progress(f"[bench] distributed: {actors} actor(s), {minutes:g} min ...")
        results[f"actors{actors}"] = measured_run(workloads, minutes, {"actors.num_actors": actors})
        progress(f"  {results[f'actors{actors}']['self_play_steps_per_s']:,.0f} steps/s")
    return results


def soak(workloads: str, minutes: float = 10.0, progress=print) -> dict[str, Any]:
    """A long run with 2 actors, the evaluator and checkpoints, with memory samples."""
    progress(f"[bench] distributed soak: 2 actors, {minutes:g} min ...")
    return measured_run(
        workloads,
        minutes,
        {
            "actors.num_actors": 2,
            "run.checkpoint_interval_minutes": 3.0,
            "evaluator.interval_s": 120.0,
        },  # fmt: skip
        memory=True,
    )


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

    memory = [
        f"| `{m['process']}` | {m['start']:,.0f} | {m['middle']:,.0f} | {m['end']:,.0f} | "
        f"{m['end'] / m['middle']:.2f} |"
        for m in soak.get("memory_mib", [])
        if m["start"] >= 20
    ]
    at = [f"{t / 60:.1f}" for t in soak.get("memory_seconds", [0, 0, 0])]
    return "\n".join(
        [
            "| actors | self-play steps/s (total) | ratio to 1 actor | learner steps/s | "
            "learner time waiting for replay | achieved samples per insert | policy lag (steps) |",
            "|---|---|---|---|---|---|---|",
            row("1", one),
            row("2", two),
            row(f"2, soak of {soak['minutes']:g} min", soak),
            "",
            "Resident memory of every process of the soak (MiB, 20 MiB and over) at "
            f"{at[0]}, {at[1]} and {at[2]} minutes. The replay server grows until its table "
            "holds `replay.max_size` sequences; after that, end over middle shows whether "
            "anything still grows. A title names the method an actor was running at the last "
            "sample (`ReplayService.checkpoint`: a checkpoint, which serialises the table, was "
            "being written):",
            "",
            "| process | start | middle | end | end / middle |",
            "|---|---|---|---|---|",
            *memory,
        ]
    )
