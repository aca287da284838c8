"""Default experiment: every knob of a training run, as an ml_collections ConfigDict.

The values and their meaning live in one place, :mod:`mallocmuzero.configs.schema`;
this file is the starting point other config files change. Override any field from
the command line: ``--set learner.batch_size=128``.
"""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs.schema import ExperimentConfig


def get_config() -> ml_collections.ConfigDict:
    """The default configuration (``ExperimentConfig()``'s values)."""
    return ml_collections.ConfigDict(ExperimentConfig().to_dict())
