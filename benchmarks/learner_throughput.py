"""Benchmark (c), learner: steps per second from a real Reverb table, before and after.

The learner role's own code (:class:`~mallocmuzero.learner.service.LearnerService` with
the config's parts) samples from a real Reverb server on 127.0.0.1 holding sequences of
the default config's signature (synthetic values, no self-play), at batch 64, 256 and
1024. "Before" is the learner before this change: items sampled one by one in Python
(``replay.sampling.sample_batch``), one update per jitted call, no prefetching; "dataset"
is Reverb's batched dataset alone; "after" adds a thread that stages the next batches on
the device and fuses ``updates_per_jit`` updates into one call. It reports steps per
second, the ratio after over before at each batch (same run, same machine), and the share
of the learner's time spent waiting for its next batch. "Sampling alone" is how fast this
host turns Reverb items into batches, with no learning: the ceiling any learner here meets.

    python -m mallocmuzero.benchmarks.learner_throughput --out BENCHMARKS-learner.md
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Iterator

import jax

from mallocmuzero.benchmarks.synthetic_replay import write_steps
from mallocmuzero.benchmarks.tables import markdown_table, write_report, written_on
from mallocmuzero.cluster.components import learner_parts, replay_config, sequence_spec
from mallocmuzero.configs.schema import ExperimentConfig, with_values
from mallocmuzero.replay.adder import SequenceAdder
from mallocmuzero.replay.dataset import ReplayBatch, ReplayDataset
from mallocmuzero.replay.sampling import sample_batch, update_priorities
from mallocmuzero.replay.server import start_server

BATCHES = (64, 256, 1024)
FUSED = 4  # updates per jitted call, "after"
PLAIN = {"updates_per_jit": 1, "prefetch_batches": 0}
ITEMS = 4000  # sequences in the table (sampled with replacement)


def filled_server(config: ExperimentConfig, items: int = ITEMS):
    """A Reverb server with ``items`` sequences of ``config``'s signature; (server, address)."""
    import reverb

    spec = sequence_spec(config)
    unlimited = replay_config(config, samples_per_insert=0)
    server = start_server(spec, unlimited)
    address = f"127.0.0.1:{server.port}"
    games = 64
    adder = SequenceAdder(reverb.Client(address), spec, games, config.replay.period)
    write_steps(adder, spec, games, steps=items * config.replay.period // games + spec.length)
    return server, address


class ItemSampler(Iterator[ReplayBatch]):
    """The learner's batches before Reverb's dataset: items sampled one by one in Python."""

    def __init__(self, client, batch_size: int, importance_beta: float) -> None:
        self.client, self.batch_size, self.beta = client, batch_size, importance_beta

    def __next__(self) -> ReplayBatch:
        """A batch of ``batch_size`` items, one ``next`` of Reverb's sampler each."""
        sampled = sample_batch(self.client, self.batch_size)
        return ReplayBatch(sampled.sequences, sampled.keys, sampled.importance_weights(self.beta))

    def update_priorities(self, keys, priorities) -> None:
        """Give the sampled items their new priorities."""
        update_priorities(self.client, keys, priorities)


def item_sampler_parts(config: ExperimentConfig, state, client):
    """The learner role's parts before this change: the item sampler, nothing staged."""
    from mallocmuzero.cluster.components import make_learner

    dataset = ItemSampler(client, config.learner.batch_size, config.replay.importance_beta)
    return make_learner(config, state), dataset, dataset


MODES = {"before": (item_sampler_parts, PLAIN), "dataset": (learner_parts, PLAIN),
         "after": (learner_parts, {"updates_per_jit": FUSED, "prefetch_batches": 2})}  # fmt: skip


def measure_learner(config: ExperimentConfig, address: str, seconds: float,
                    parts=learner_parts) -> dict[str, float]:  # fmt: skip
    """The learner role's steps/s and wait share on ``address`` for about ``seconds``."""
    from mallocmuzero.learner.service import LearnerService

    service = LearnerService(functools.partial(parts, config), address)
    per_call = config.learner.updates_per_jit
    service.train(per_call)  # compiles
    totals = {"steps": 0.0, "wait_seconds": 0.0, "seconds": 0.0}
    while totals["seconds"] < seconds:
        out = service.train(per_call * 2)
        totals = {k: v + out[k] for k, v in totals.items()}
    spent = totals["seconds"]
    return {"steps_per_s": totals["steps"] / spent, "wait_share": totals["wait_seconds"] / spent}


def measure_sampling(config: ExperimentConfig, address: str, seconds: float,
                     sampler=ReplayDataset) -> float:  # fmt: skip
    """Batches per second the host samples from ``address`` (no learning)."""
    import reverb

    dataset = sampler(reverb.Client(address), config.learner.batch_size, 0.5)
    next(dataset)
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        next(dataset)
        count += 1
    return count / (time.perf_counter() - started)


def run(seconds: float, progress=print) -> dict:
    """Every batch size: sampling alone, then the learner before and after."""
    base = ExperimentConfig()
    server, address = filled_server(base)
    rows = []
    try:
        for batch in BATCHES:
            sized = with_values(base, {"learner.batch_size": batch})
            row = {"batch": batch, "sampling_per_s": measure_sampling(sized, address, seconds),
                   "item_sampling_per_s": measure_sampling(sized, address, seconds,
                                                           ItemSampler)}  # fmt: skip
            for mode, (parts, settings) in MODES.items():
                changes = {f"learner.{k}": v for k, v in settings.items()}
                row[mode] = measure_learner(with_values(sized, changes), address, seconds, parts)
            rows.append(row)
            progress(f"[learner] batch {batch}: {json.dumps(row)}")
    finally:
        server.stop()
    return {"rows": rows, "device": str(jax.devices()[0]), "written": written_on(),
            "seconds": seconds}  # fmt: skip


def markdown(result: dict) -> str:
    """The table of :func:`run` with its reading."""
    cells = [
        [str(r["batch"]), f"{r['item_sampling_per_s']:.1f}", f"{r['sampling_per_s']:.1f}",
         f"{r['before']['steps_per_s']:.1f}", f"{r['before']['wait_share']:.0%}",
         f"{r['dataset']['steps_per_s']:.1f}", f"{r['dataset']['wait_share']:.0%}",
         f"{r['after']['steps_per_s']:.1f}", f"{r['after']['wait_share']:.0%}",
         f"{r['after']['steps_per_s'] / r['before']['steps_per_s']:.2f}"]
        for r in result["rows"]
    ]  # fmt: skip
    header = ["batch", "sampling alone, items one by one: batches/s",
              "sampling alone, Reverb's dataset: batches/s", "before: steps/s",
              "before: waiting", "dataset: steps/s", "dataset: waiting",
              f"after ({FUSED} fused, prefetch 2): steps/s", "after: waiting",
              "after / before"]  # fmt: skip
    return (
        "# Learner throughput\n\n"
        f"Measured {result['written']} on {result['device']}, about {result['seconds']:g} s "
        "per figure, by `python -m mallocmuzero.benchmarks.learner_throughput`. The learner "
        "role's own code samples from a real Reverb server on 127.0.0.1 filled with "
        f"{ITEMS:,} sequences of the default config's signature (no self-play), default "
        "network. Before: items sampled one by one in Python, one update per jitted call, "
        "no prefetch (the learner before this change). Dataset: Reverb's batched dataset "
        "alone. After: the dataset, and a thread stages "
        f"the next two calls' batches on the device and {FUSED} updates run in one jitted call "
        "(`lax.scan`). Waiting: the share of the learner's time blocked on its next batch.\n\n"
        + markdown_table(header, cells)
        + "\n"
    )


def main() -> None:
    """Run the benchmark and write its table and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per figure")
    parser.add_argument("--out", default="BENCHMARKS-learner.md")
    args = parser.parse_args()
    result = run(args.seconds, progress=lambda line: print(line, flush=True))
    write_report(result, args.out, markdown)


if __name__ == "__main__":
    main()
