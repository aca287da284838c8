"""The recipe of the game v1 checkpoint kept in ``checkpoints/pretrained_v1`` for comparison.

The default config on game v1 (``game.pick_candidates = 1``: msa's order), lookahead
observations on, one self-play actor beside the learner, three samples per insert, 45
minutes of the distributed runner::

    mallocmuzero train --config configs/pretrained_v1.py --run-dir runs/pretrained_v1

It was the shipped agent before game v2; BENCHMARKS.md keeps its rows beside the v2 one's.
"""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs import pretrained


def get_config() -> ml_collections.ConfigDict:
    """The v2 recipe on game v1."""
    c = pretrained.get_config()
    c.game.pick_candidates = 1
    return c
