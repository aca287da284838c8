"""Load a config file (``get_config()``) and apply ``key=value`` overrides."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import ml_collections

from mallocmuzero.errors import UserError


def load_config(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """Run the config file's ``get_config()`` and apply overrides such as ``a.b=3``.

    A config file is Python code the user chose to run, as with any ml_collections config;
    unknown keys and values of the wrong type are errors naming the key.
    """
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: no such config file")
    spec = importlib.util.spec_from_file_location(f"_mallocmuzero_config_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: report it, not our traceback
        raise UserError(f"{path}: cannot load config: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, "get_config"):
        raise UserError(f"{path}: a config file must define get_config()")
    config = module.get_config()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        apply_override(config, key.strip(), text.strip(), path)
    check_consistency(config, path)
    return config


def rollout_weight_problem(weight: float, lookahead: bool) -> str | None:
    """What is wrong with a search rollout weight for an observation, or None."""
    if not 0.0 <= weight <= 1.0:
        return f"must be in [0, 1] (got {weight:g})"
    if weight > 0 and not lookahead:
        return "> 0 needs game.lookahead = True"
    return None


def check_consistency(config: ml_collections.ConfigDict, source: str) -> None:
    """Reject settings that contradict each other, naming them."""
    lookahead = config.game.get("lookahead", False)
    problem = rollout_weight_problem(config.search.get("rollout_weight", 0.0), lookahead)
    if problem:
        raise UserError(f"{source}: search.rollout_weight {problem}")


def apply_override(config: ml_collections.ConfigDict, key: str, text: str, source: str) -> None:
    """Set one dotted key from text, keeping the field's type."""
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
            raise UserError(f"{source}: unknown config key {key!r}")
        node = node[part]
    if leaf not in node:
        close = ", ".join(sorted(node.keys()))
        raise UserError(f"{source}: unknown config key {key!r} (known here: {close})")
    current = node[leaf]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, bool) and text.lower() in ("true", "false"):
        value = text.lower() == "true"  # accept true/false as well as Python's True/False
    if isinstance(current, bool) != isinstance(value, bool) or (
        current is not None
        and not isinstance(value, type(current))
        and not (isinstance(current, float) and isinstance(value, int))
        and not (isinstance(current, tuple) and isinstance(value, list | tuple))
    ):
        raise UserError(f"{source}: {key} expects {type(current).__name__}, got {text!r}")
    if isinstance(current, float):
        value = float(value)
    if isinstance(current, tuple):
        value = tuple(value)
    node[leaf] = value
