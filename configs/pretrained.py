"""The recipe of the checkpoint shipped in ``checkpoints/pretrained``.

The default config, 45 minutes of the synchronous runner on 2 CPU cores (17,205 learner
steps, 1.1 M self-play steps, 17,495 episodes)::

    mallocmuzero train --config configs/pretrained.py --run-dir runs/pretrained --runner sync

Its held-out evaluation is in BENCHMARKS.md, section (e).
"""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs import default


def get_config() -> ml_collections.ConfigDict:
    """The default config with a 45-minute budget."""
    c = default.get_config()
    c.run.max_minutes = 45.0
    return c
