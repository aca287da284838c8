"""Benchmark: the parameter broadcast, from the learner to N actors through Ray.

The mechanism the system uses (``cluster/supervisor.py``): the newest parameters are put
once in Ray's object store and their ``ObjectRef`` goes with each actor's next call; each
actor's worker resolves it (a copy from the local object store, or a transfer from the
learner's node on a cluster) before the call runs. Here N light actors (no JAX) each
answer a call carrying the default network's parameters with the time they received
them. Per N: the learner's cost per publish (``ray.put`` and the N calls' submission,
the time it does not train) and the latency to the last actor's receipt, medians of
``--repeats`` publishes.

    python -m mallocmuzero.benchmarks.broadcast --out BENCHMARKS-broadcast.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from mallocmuzero.benchmarks.tables import markdown_table, write_report, written_on

SUBSCRIBERS = (1, 4, 16, 64)


class Subscriber:
    """A light actor: receives parameters, answers with the time they arrived."""

    def receive(self, params: dict, version: int) -> tuple[float, int]:
        """The wall-clock time at which ``params`` (already resolved) reached this call."""
        del params
        return time.time(), version


def default_params() -> dict:
    """The default network's parameters as host arrays, what the learner publishes."""
    import jax

    from mallocmuzero.agent.networks import init_params
    from mallocmuzero.agent.solve import agent_network, observation_spec
    from mallocmuzero.configs.schema import ExperimentConfig

    config = ExperimentConfig()
    return jax.device_get(init_params(agent_network(config), observation_spec(config).size))


def publish_once(subscribers: list, params: dict, version: int) -> dict[str, float]:
    """One publish to every subscriber: the learner's cost and the last receipt's latency."""
    import ray

    started = time.time()
    ref = ray.put(params)
    calls = [s.receive.remote(ref, version) for s in subscribers]
    cost = time.time() - started
    received = ray.get(calls)
    assert all(v == version for _, v in received)
    return {"cost_s": cost, "latency_s": max(t for t, _ in received) - started}


def run(counts=SUBSCRIBERS, repeats: int = 10, progress=print) -> dict:
    """Per subscriber count: medians of ``repeats`` publishes (after one warm-up)."""
    import ray

    params = default_params()
    size = sum(np.asarray(leaf).nbytes for leaf in _leaves(params))
    ray.init(address="local", include_dashboard=False, log_to_driver=False,
             num_cpus=os.cpu_count())  # fmt: skip
    remote = ray.remote(num_cpus=0)(Subscriber)
    rows = []
    try:
        for n in counts:
            subscribers = [remote.remote() for _ in range(n)]
            publish_once(subscribers, params, -1)  # every actor started and warm
            runs = [publish_once(subscribers, params, v) for v in range(repeats)]
            median = {k: 1e3 * statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append({"subscribers": n, "cost_ms": median["cost_s"],
                         "latency_ms": median["latency_s"]})  # fmt: skip
            progress(f"[broadcast] {rows[-1]}")
            for s in subscribers:
                ray.kill(s)
    finally:
        ray.shutdown()
    return {"rows": rows, "params_bytes": size, "repeats": repeats, "written": written_on()}


def _leaves(tree) -> list:
    import jax

    return jax.tree_util.tree_leaves(tree)


def markdown(result: dict) -> str:
    """The table of :func:`run`."""
    header = ["subscribers N", "learner's cost per publish (ms)", "latency to the last (ms)"]
    cells = [[str(r["subscribers"]), f"{r['cost_ms']:.1f}", f"{r['latency_ms']:.1f}"]
             for r in result["rows"]]  # fmt: skip
    return (
        "# Parameter broadcast\n\n"
        f"Measured {result['written']} by `python -m mallocmuzero.benchmarks.broadcast`: the "
        f"default network's parameters ({result['params_bytes'] / 1e6:.2f} MB) put once in "
        "Ray's object store, the ObjectRef passed with one call to each of N light actors "
        f"(one local Ray runtime), medians of {result['repeats']} publishes. The cost is the "
        "learner's (put and submitting the calls); the latency runs to the last actor's "
        "receipt.\n\n" + markdown_table(header, cells) + "\n"
    )


def main() -> None:
    """Run the benchmark and write its table and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=list(SUBSCRIBERS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="BENCHMARKS-broadcast.md")
    args = parser.parse_args()
    result = run(args.subscribers, args.repeats, progress=lambda line: print(line, flush=True))
    write_report(result, args.out, markdown)


if __name__ == "__main__":
    main()
