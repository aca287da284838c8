r"""Benchmark: the learner core on an accelerator, self-play on many cores (cores only).

Made for a GPU machine lent for minutes whose Python holds JAX but not Ray or Reverb (so
a training run of the system cannot start there): it measures the two cores a run is
made of, each against a baseline measured in the same run on the same machine.

1. The learner core (:class:`~mallocmuzero.learner.learner.Learner`, the config's network,
   ``FUSED`` updates per jitted call) on the accelerator and on the same host's CPU, for
   each encoder, at batch 64, 256 and 1024: learner steps per second, the batch already
   on the device (the prefetch thread stages it there during a run).
2. The self-play core (:func:`~mallocmuzero.cluster.components.make_self_play`, random
   parameters, the config's games and search) in P processes of one core each, as the
   actors run it: steps per second summed over the processes, for each P in ``--processes``.

::

    python -m mallocmuzero.benchmarks.accelerator --measure --out BENCHMARKS-accelerator.json
    python -m mallocmuzero.benchmarks.accelerator --render BENCHMARKS-accelerator.json \\
        --out BENCHMARKS-accelerator.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import queue
import time
from pathlib import Path

import numpy as np

from mallocmuzero.benchmarks.tables import machine, markdown_table, written_on
from mallocmuzero.configs.schema import ENCODERS
from mallocmuzero.env.workload import write_json_atomic

BATCHES = (64, 256, 1024)
FUSED = 4  # updates per jitted call
CONFIG = "configs/set_encoder.py"  # the recipe of the set-encoder comparison


def experiment(encoder: str, **values):
    """The comparison's config with ``encoder`` and dotted ``values``."""
    from mallocmuzero.configs.loader import load_config
    from mallocmuzero.configs.schema import with_values

    here = Path(__file__).resolve().parents[1]
    return with_values(load_config(str(here / CONFIG)), {"network.encoder": encoder, **values})


def synthetic_batch(config, batch: int, seed: int = 0):
    """``FUSED`` stacked batches of random sequences of the config's signature."""
    from mallocmuzero.benchmarks.synthetic_replay import synthetic_step
    from mallocmuzero.cluster.components import sequence_spec
    from mallocmuzero.replay.dataset import ReplayBatch

    spec = sequence_spec(config)
    step = synthetic_step(spec, FUSED * batch * spec.length, np.random.default_rng(seed))
    sequences = {
        name: value.reshape(FUSED, batch, spec.length, *value.shape[1:])
        for name, value in step._asdict().items()
    }
    keys = np.zeros((FUSED, batch), np.uint64)
    return ReplayBatch(sequences, keys, np.ones((FUSED, batch), np.float32))


def learner_rate(encoder: str, batch: int, device, seconds: float) -> float:
    """Learner steps per second of the learner core on ``device``."""
    import jax

    from mallocmuzero.cluster.components import make_learner

    config = experiment(encoder, **{"learner.batch_size": batch})
    with jax.default_device(device):
        learner = make_learner(config)
        learner.state = jax.device_put(learner.state, device)  # committed: one compile
        data = synthetic_batch(config, batch)
        data = dataclasses.replace(data, sequences=jax.device_put(data.sequences, device),
                                   weights=jax.device_put(data.weights, device))  # fmt: skip
        learner.update(data)  # compile
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            learner.update(data)
            calls += 1
    return calls * FUSED / (time.perf_counter() - start)


def _self_play_process(seed: int, seconds: float, barrier, results) -> None:
    """One one-core self-play core: warm up, wait for the others, count steps."""
    from mallocmuzero.agent.networks import init_params
    from mallocmuzero.agent.solve import agent_network, observation_spec
    from mallocmuzero.cluster.components import base_workloads, make_self_play

    config = experiment("mlp")
    core = make_self_play(config, base_workloads(config), None, seed)
    params = init_params(agent_network(config), observation_spec(config).size, seed)
    for _ in range(3):
        core.step(params)
    barrier.wait(timeout=300)  # a process that failed to start breaks it for the others
    before, start = core.stats.steps, time.perf_counter()
    while time.perf_counter() - start < seconds:
        core.step(params)
    results.put((core.stats.steps - before) / (time.perf_counter() - start))


def self_play_rate(processes: int, seconds: float) -> float:
    """Self-play steps per second summed over ``processes`` one-core processes.

    Each process starts with the environment an actor of one CPU gets (XLA, numba and
    BLAS on one thread, JAX on the CPU).
    """
    from mallocmuzero.actors.service import thread_limits

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_self_play_process, args=(i, seconds, barrier, results))
               for i in range(processes)]  # fmt: skip
    saved = dict(os.environ)
    os.environ.update({**thread_limits(1), "JAX_PLATFORMS": "cpu"})
    try:
        for worker in workers:
            worker.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        rates = [results.get(timeout=seconds + 360) for _ in workers]
    except queue.Empty:
        codes = [worker.exitcode for worker in workers]
        raise RuntimeError(f"a self-play process failed (exit codes {codes})") from None
    for worker in workers:
        worker.join()
    return float(sum(rates))


def measure(seconds: float, processes: list[int], out: Path, progress=print) -> dict:
    """Every figure of the benchmark on this machine's devices, saved to ``out`` as it goes."""
    import jax

    cpu, accelerator = jax.devices("cpu")[0], jax.devices()[0]
    result = {"written": written_on(), "machine": machine(), "cpus": os.cpu_count(),
              "accelerator": accelerator.device_kind, "jax": jax.__version__,
              "learner": [], "self_play": []}  # fmt: skip
    for encoder in ENCODERS:
        for batch in BATCHES:
            row = {"encoder": encoder, "batch": batch}
            for name, device in (("cpu", cpu), ("accelerator", accelerator)):
                row[name] = learner_rate(encoder, batch, device, seconds)
            progress(f"[accelerator] learner {encoder} batch {batch}: {row}")
            result["learner"].append(row)
            write_json_atomic(result, out)
    for count in processes:
        rate = self_play_rate(count, seconds)
        progress(f"[accelerator] self-play, {count} processes: {rate:,.0f} steps/s")
        result["self_play"].append({"processes": count, "steps_per_s": rate})
        write_json_atomic(result, out)
    return result


def markdown(result: dict) -> str:
    """The report of one measurement."""
    learner = [[r["encoder"], str(r["batch"]), f"{r['cpu']:,.1f}", f"{r['accelerator']:,.1f}",
                f"{r['accelerator'] / r['cpu']:.1f}"] for r in result["learner"]]  # fmt: skip
    play, first = [], (result["self_play"] or [{}])[0]
    for r in result["self_play"]:
        scaling = r["steps_per_s"] * first["processes"] / (first["steps_per_s"] * r["processes"])
        play.append([str(r["processes"]), f"{r['steps_per_s']:,.0f}", f"{scaling:.2f}"])
    return "\n".join([
        "# The cores on an accelerator machine",
        "",
        f"Measured {result['written']} on one {result['accelerator']} with {result['cpus']} "
        f"CPU cores (JAX {result['jax']}) by `python -m mallocmuzero.benchmarks.accelerator`. "
        "Each ratio is against a baseline of the same run on the same machine.",
        "",
        f"## The learner core ({FUSED} updates per jitted call, batch on the device)",
        "",
        markdown_table(["encoder", "batch", "host CPU: steps/s", "accelerator: steps/s",
                        "accelerator / CPU"], learner),  # fmt: skip
        "",
        "## The self-play core, one core per process (random parameters)",
        "",
        markdown_table(["processes", "steps/s, all processes", "per process / first row's"],
                       play),
        "",
    ])  # fmt: skip


def main() -> None:
    """Measure here (``--measure``) or render a measurement (``--render``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="measure on this machine")
    parser.add_argument("--render", help="a measurement's JSON to render as markdown")
    parser.add_argument("--seconds", type=float, default=10.0, help="per figure")
    parser.add_argument("--processes", default="1,8,15", help="self-play process counts")
    parser.add_argument("--out", required=True, help="JSON (--measure) or markdown (--render)")
    args = parser.parse_args()
    if args.render:
        text = markdown(json.loads(Path(args.render).read_text()))
        Path(args.out).write_text(text)
    else:
        counts = [int(x) for x in args.processes.split(",")]
        print(markdown(measure(args.seconds, counts, Path(args.out))))


if __name__ == "__main__":
    main()
