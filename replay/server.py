"""The Reverb replay service: one prioritized table of fixed-length sequences.

Reverb's server takes only a port and listens on every interface with no authentication:
we pick a free random port and stop the server with the run. A cluster must therefore
sit on a private network (see the README's security section).
"""

from __future__ import annotations

import dataclasses

from mallocmuzero.replay.schema import SequenceSpec

TABLE = "sequences"


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Table size, prioritization and the sample-to-insert rate limiter.

    No defaults here: the experiment config (``configs/schema.py``) holds the only copy.
    """

    max_size: int
    priority_exponent: float
    samples_per_insert: float  # 0: only a minimum size
    min_size_to_sample: int
    error_buffer: float


def make_table(spec: SequenceSpec, config: ReplayConfig):
    """A prioritized table with a sample-to-insert rate limiter from the config."""
    import reverb

    if config.samples_per_insert > 0:
        limiter = reverb.rate_limiters.SampleToInsertRatio(
            samples_per_insert=config.samples_per_insert,
            min_size_to_sample=config.min_size_to_sample,
            error_buffer=config.error_buffer,
        )
    else:
        limiter = reverb.rate_limiters.MinSize(config.min_size_to_sample)
    return reverb.Table(
        name=TABLE,
        sampler=reverb.selectors.Prioritized(config.priority_exponent),
        remover=reverb.selectors.Fifo(),
        max_size=config.max_size,
        rate_limiter=limiter,
        signature=spec.table_signature(),
    )


def start_server(
    spec: SequenceSpec, config: ReplayConfig, port: int | None = None, checkpointer=None
):
    """Start a Reverb server with the sequence table (a free random port when None)."""
    import reverb

    return reverb.Server([make_table(spec, config)], port=port, checkpointer=checkpointer)
