"""Agent checkpoints: network parameters (flax msgpack, never pickle) and the run's config.

A checkpoint folder holds ``params.msgpack``, ``config.json`` and ``meta.json`` (learner
step, observation size). Files are written to a temporary folder and renamed into place,
so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flax import serialization

from mallocmuzero.agent.networks import NetworkConfig, init_params
from mallocmuzero.configs.schema import ConfigError, ExperimentConfig, migrate
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.errors import UserError


def dataclass_from_section(cls: type, section: Any, **extra: Any):
    """Build dataclass ``cls`` from the config section's fields of the same names."""
    names = {f.name for f in dataclasses.fields(cls)} - set(extra)
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    return cls(**{k: v for k, v in values.items() if k in names}, **extra)


def network_config(config: ExperimentConfig, num_actions: int) -> NetworkConfig:
    """The NetworkConfig of an experiment config (reward support = value support)."""
    n = config.network
    return dataclass_from_section(
        NetworkConfig,
        n,
        num_actions=num_actions,
        observation=dataclass_from_section(ObservationSpec, config.game),
        reward_bins=n.value_bins,
        reward_low=n.value_low,
        reward_high=n.value_high,
    )


def save_checkpoint(
    folder: str | os.PathLike[str],
    params: Any,
    config: ExperimentConfig,
    meta: dict[str, Any],
) -> Path:
    """Write params, config and meta atomically into ``folder``."""
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        (tmp / "params.msgpack").write_bytes(serialization.to_bytes(params))
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_checkpoint(folder: str | os.PathLike[str]):
    """Return (params, config, meta, NetworkConfig) of a checkpoint folder."""
    path = Path(folder)
    for name in ("params.msgpack", "config.json", "meta.json"):
        if not (path / name).is_file():
            raise UserError(f"{path}: not a mallocmuzero checkpoint (missing {name})")
    try:
        config = migrate(json.loads((path / "config.json").read_text()))
        meta = json.loads((path / "meta.json").read_text())
        net = network_config(config, int(meta["num_actions"]))
        template = init_params(net, int(meta["observation_size"]))
        params = serialization.from_bytes(template, (path / "params.msgpack").read_bytes())
    except ConfigError as exc:
        raise UserError(f"{path / 'config.json'}: {exc}") from None
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: corrupt checkpoint: {exc}") from None
    return params, config, meta, net


def checkpoint_digest(folder: str | os.PathLike[str]) -> str:
    """A short digest of a checkpoint's parameters and config: which agent it holds.

    Benchmark caches key an agent's rows on it, so a row measured with other parameters
    under the same label is never reported as this checkpoint's.
    """
    path, digest = Path(folder), hashlib.sha256()
    for name in ("params.msgpack", "config.json"):
        digest.update((path / name).read_bytes())
    return digest.hexdigest()[:16]
