"""Benchmark: the replay ceiling, one Reverb server under W writers and one sampler.

A real Reverb server of the default config's table runs in a process of its own; W
writer processes stream synthetic steps of the real signature through the project's
:class:`~mallocmuzero.replay.adder.SequenceAdder` (64 games each, no search), as W
self-play actors would at full speed; one sampler draws the learner's batches (batch 64,
the learner's dataset) at full speed. The table's rate limiter only asks for a minimum
size, so neither side waits on the other. For each W: sequences inserted per second,
batches sampled per second, and the server process's CPU share (of one core), read from
the server's own counters and the OS.

On a 2-core machine the writers and the sampler share the two cores with the server: the
figures there are a lower bound of the server's ceiling, and the server's CPU share
says how far it is from its own limit (one core's worth of its threads is not a ceiling:
Reverb serves from a thread pool).

    python -m mallocmuzero.benchmarks.replay_ceiling --out BENCHMARKS-replay.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

from mallocmuzero.benchmarks.tables import markdown_table, write_report, written_on

WRITERS = (1, 2, 4, 8)
GAMES = 64  # per writer, as a self-play actor's batch


def _config():
    from mallocmuzero.configs.schema import ExperimentConfig

    return ExperimentConfig()


def _serve(ports: mp.Queue, stop: mp.Event) -> None:
    """The server process: the default table, minimum-size limiter, until ``stop``."""
    from mallocmuzero.cluster.components import replay_config, sequence_spec
    from mallocmuzero.replay.server import start_server

    config = _config()
    server = start_server(sequence_spec(config), replay_config(config, samples_per_insert=0))
    ports.put(server.port)
    stop.wait()
    server.stop()


def _write(address: str, seconds: float, seed: int, done: mp.Queue) -> None:
    """A writer process: synthetic batched steps through the adder for ``seconds``."""
    import numpy as np
    import reverb

    from mallocmuzero.benchmarks.synthetic_replay import synthetic_step
    from mallocmuzero.cluster.components import sequence_spec
    from mallocmuzero.replay.adder import SequenceAdder

    config = _config()
    spec = sequence_spec(config)
    adder = SequenceAdder(reverb.Client(address), spec, GAMES, config.replay.period)
    step = synthetic_step(spec, GAMES, np.random.default_rng(seed))
    not_done = np.zeros(GAMES, bool)
    done.put("ready")
    deadline, steps = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        adder.add(step, not_done)
        steps += GAMES
    done.put(steps)


def _table_counts(client) -> tuple[int, int]:
    """(inserts, samples) completed, from the server's rate limiter counters."""
    from mallocmuzero.replay.server import TABLE

    info = client.server_info()[TABLE].rate_limiter_info
    return info.insert_stats.completed, info.sample_stats.completed


def measure(writers: int, seconds: float, address: str, server_pid: int) -> dict:
    """Inserts/s, samples/s and the server's CPU share with ``writers`` writers."""
    import psutil
    import reverb

    from mallocmuzero.replay.dataset import ReplayDataset

    context = mp.get_context("spawn")
    done = context.Queue()
    procs = [context.Process(target=_write, args=(address, seconds, seed, done))
             for seed in range(writers)]  # fmt: skip
    for proc in procs:
        proc.start()
    for _ in procs:
        assert done.get(timeout=300) == "ready"
    client = reverb.Client(address)
    dataset = ReplayDataset(client, _config().learner.batch_size, 0.5)
    server = psutil.Process(server_pid)
    inserts0, samples0 = _table_counts(client)
    cpu0, started, batches = sum(server.cpu_times()[:2]), time.monotonic(), 0
    while time.monotonic() - started < seconds:
        next(dataset)
        batches += 1
    wall = time.monotonic() - started
    inserts1, samples1 = _table_counts(client)
    cpu = sum(server.cpu_times()[:2]) - cpu0
    steps = sum(done.get(timeout=300) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    return {"writers": writers, "inserts_per_s": (inserts1 - inserts0) / wall,
            "batches_per_s": batches / wall, "samples_per_s": (samples1 - samples0) / wall,
            "server_cpu_share": cpu / wall, "writer_steps_per_s": steps / seconds}  # fmt: skip


def run(seconds: float, writers=WRITERS, progress=print) -> dict:
    """:func:`measure` for each writer count against one server process."""
    context = mp.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(ports, stop))
    server.start()
    address = f"127.0.0.1:{ports.get(timeout=300)}"
    rows = []
    try:
        for w in writers:
            rows.append(measure(w, seconds, address, server.pid))
            progress(f"[replay] {rows[-1]}")
    finally:
        stop.set()
        server.join(timeout=60)
    return {"rows": rows, "seconds": seconds, "written": written_on(), "games": GAMES}


def markdown(result: dict) -> str:
    """The table of :func:`run`."""
    header = ["writers W", "sequences inserted/s", "batches sampled/s (64)",
              "sequences sampled/s", "server CPU (cores)", "steps written/s"]  # fmt: skip
    cells = [[str(r["writers"]), f"{r['inserts_per_s']:,.0f}", f"{r['batches_per_s']:.1f}",
              f"{r['samples_per_s']:,.0f}", f"{r['server_cpu_share']:.2f}",
              f"{r['writer_steps_per_s']:,.0f}"] for r in result["rows"]]  # fmt: skip
    return (
        "# Replay ceiling\n\n"
        f"Measured {result['written']}, about {result['seconds']:g} s per row, by `python -m "
        "mallocmuzero.benchmarks.replay_ceiling`. One Reverb server (the default config's "
        f"table) in its own process; W writer processes of {result['games']} games each "
        "stream synthetic steps of the real signature through the project's adder (no "
        "search); one sampler draws the learner's batches of 64. Inserts and samples are "
        "the server's own counters; its CPU is in cores (1.00 = one core busy).\n\n"
        + markdown_table(header, cells)
        + "\n"
    )


def main() -> None:
    """Run the benchmark and write its table and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per writer count")
    parser.add_argument("--writers", type=int, nargs="+", default=list(WRITERS))
    parser.add_argument("--out", default="BENCHMARKS-replay.md")
    args = parser.parse_args()
    result = run(args.seconds, args.writers, progress=lambda line: print(line, flush=True))
    write_report(result, args.out, markdown)


if __name__ == "__main__":
    main()
