"""Load a config file (``get_config()``), apply ``key=value`` overrides, check it once."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import ml_collections

from mallocmuzero.configs.schema import ConfigError, ExperimentConfig, parse_config
from mallocmuzero.errors import UserError


def load_config(path: str, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Run the config file's ``get_config()``, apply overrides such as ``a.b=3``, check it.

    A config file is Python code the user chose to run, as with any ml_collections config;
    unknown keys, values of the wrong type or range and settings that contradict each
    other are one-line errors naming the file and the key.
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
    return typed_config(config, path)


def typed_config(config: ml_collections.ConfigDict, source: str) -> ExperimentConfig:
    """The checked :class:`ExperimentConfig` of a ConfigDict; errors name ``source``."""
    try:
        return parse_config(config.to_dict())
    except ConfigError as exc:
        raise UserError(f"{source}: {exc}") from None


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
