"""The recipe shape of the shipped agent: one self-play actor, three samples per insert.

The default game and network, one self-play actor beside the learner, three samples per
insert (the learner otherwise idles 70% of its time waiting for data on a 2-core host).

The checkpoint shipped in ``checkpoints/pretrained`` is the final checkpoint of the
learning-curve run, ``configs/curve.py`` (this recipe on the 226 training programs of
``mallocmuzero workloads generate --count 300``, six model families; minutes 0 to 125
from msa's order, then resumed with ``--set workloads.base_order_share=0.5``, and from
minute 167 to 187 on the shipped game, ``dynamic`` K = 8); its meta lists the programs
and the training time, and ``checkpoints/curve-run/README.md`` how to go on with the
run. Its held-out evaluation is in BENCHMARKS.md, sections (e), (f) and (h), and in
BENCHMARKS-generalisation.md. The game v1 agent of an earlier recipe is kept in
``checkpoints/pretrained_v1`` (``configs/pretrained_v1.py``).

On the built-in suite alone (45 minutes, as the agent shipped before)::

    mallocmuzero train --config configs/pretrained.py --run-dir runs/pretrained
"""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs import default


def get_config() -> ml_collections.ConfigDict:
    """The default config with a 45-minute budget and one actor (2 cores in all)."""
    c = default.get_config()
    c.actors.num_actors = 1
    c.replay.samples_per_insert = 3.0
    c.run.max_minutes = 45.0
    return c
