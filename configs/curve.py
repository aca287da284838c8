"""The learning-curve run: the shipped recipe, from scratch, on the generated programs.

The programs come from ``mallocmuzero workloads generate --count 300`` (six model families
to train on; mixers and U-Nets held out, and the evaluator plays them). The rest is the
recipe of ``configs/pretrained.py`` (the default game and network, one self-play actor
beside the learner, three samples per insert: the shape that keeps both cores of a 2-core
host busy). The run keeps its parameters at 10, 20, 40, 80, 120, 160 and 240 training
minutes (``run.snapshot_minutes``) in ``RUN/snapshots/``; resume it with the same command::

    mallocmuzero workloads generate --count 300 --jobs 2
    mallocmuzero train --config configs/curve.py --run-dir runs/curve
"""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs import pretrained


def get_config() -> ml_collections.ConfigDict:
    """The shipped recipe on ``workloads/generated``, unbounded in time."""
    c = pretrained.get_config()
    c.workloads.dir = "workloads/generated"
    c.run.max_minutes = 0.0
    return c
