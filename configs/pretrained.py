"""The recipe of the checkpoint shipped in ``checkpoints/pretrained``.

The default config (game v2 with 8 rule pick slots, lookahead observations on), one
self-play actor beside the learner, three samples per insert (the learner otherwise idles
70% of its time waiting for data on a 2-core host), 45 minutes of the distributed
runner::

    mallocmuzero train --config configs/pretrained.py --run-dir runs/pretrained

then ``RUN/checkpoint`` (the newest agent checkpoint) is copied to ``checkpoints/pretrained``.
Its held-out evaluation is in BENCHMARKS.md, sections (e) and (h); the game v1 agent it
replaced is kept in ``checkpoints/pretrained_v1`` (recipe: ``configs/pretrained_v1.py``).
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
