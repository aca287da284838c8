r"""The per-buffer ("set") encoder against the concatenated-features MLP, at equal time.

``configs/curve.py`` (the shipped recipe on the generated programs, the shipped game,
half the games from restarts' kind of base order) with the representation's MLP replaced
by :class:`~mallocmuzero.agent.networks.SetEncoder`: one embedding per kind of token (each
offset or pick action with its lookahead pair, each upcoming buffer), one self-attention
layer across them, then the same hidden layers. The MLP baseline of the comparison is the
same command with ``--set network.encoder=mlp``::

    mallocmuzero train --config configs/set_encoder.py --run-dir runs/set --max-minutes 40
    mallocmuzero train --config configs/set_encoder.py --run-dir runs/mlp --max-minutes 40 \\
        --set network.encoder=mlp
"""

from __future__ import annotations

import ml_collections

from mallocmuzero.configs import curve


def get_config() -> ml_collections.ConfigDict:
    """The curve recipe with the set encoder and the shipped recipe's base-order share."""
    c = curve.get_config()
    c.network.encoder = "set"
    c.workloads.base_order_share = 0.5
    return c
