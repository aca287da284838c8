"""The typed experiment config: one frozen dataclass per section, checked when built.

This module holds the only copy of the defaults. Config files stay ml_collections files
(``get_config()`` returns ``default.get_config()`` with changes), so ``--set a.b=3`` works
as before; :func:`parse_config` turns the result into an :class:`ExperimentConfig` once,
at load, and every role then receives its own typed section. Checkpoints store the
config as JSON; :func:`migrate` is the one place that reads what older versions wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mallocmuzero.env.observation import SHIPPED_GAME
from mallocmuzero.env.pick_rules import pick_sources
from mallocmuzero.errors import UserError


class ConfigError(UserError):
    """A config value out of range, of the wrong type, or in conflict with another."""


def knob(default: Any, low: float | None = None, high: float | None = None, above=None):
    """A field with its default and its range: ``low <= value <= high``, ``value > above``."""
    return dataclasses.field(default=default, metadata={"low": low, "high": high, "above": above})


def _check_section(section: Any) -> None:
    """Type and range of every field of a section dataclass."""
    name = type(section).SECTION
    for field in dataclasses.fields(section):
        value, key = getattr(section, field.name), f"{name}.{field.name}"
        kind = type(field.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(section, field.name, value := float(value))
        if kind is tuple and isinstance(value, list):
            object.__setattr__(section, field.name, value := tuple(value))
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{key} expects {kind.__name__}, got {value!r}")
        meta = field.metadata
        for item in value if kind is tuple else (value,):
            if meta.get("low") is not None and item < meta["low"]:
                raise ConfigError(f"{key} must be >= {meta['low']:g} (got {value!r})")
            if meta.get("high") is not None and item > meta["high"]:
                raise ConfigError(f"{key} must be <= {meta['high']:g} (got {value!r})")
            if meta.get("above") is not None and item <= meta["above"]:
                raise ConfigError(f"{key} must be > {meta['above']:g} (got {value!r})")


def rollout_weight_problem(weight: float, lookahead: bool) -> str | None:
    """What is wrong with a search rollout weight for an observation, or None."""
    if not 0.0 <= weight <= 1.0:
        return f"must be in [0, 1] (got {weight:g})"
    if weight > 0 and not lookahead:
        return "> 0 needs game.lookahead = True"
    return None


class Section:
    """Base of the section dataclasses: checks itself when constructed."""

    SECTION = ""

    def __post_init__(self) -> None:
        _check_section(self)


@dataclasses.dataclass(frozen=True)
class WorkloadsConfig(Section):
    """The training programs and how they are varied."""

    SECTION = "workloads"
    dir: str = "workloads/builtin"  # built by `make workloads`
    split: str = "train"  # programs of the held-out split never enter training
    capacity_fraction_min: float = knob(0.05, above=0.0, high=1.0)
    capacity_fraction_max: float = knob(0.6, above=0.0, high=1.0)
    augment_windows: int = knob(8, low=0)  # random schedule windows of long programs
    augment_jitters: int = knob(8, low=0)  # copies with log-normal size jitter
    augment_sigma: float = knob(0.3, low=0.0)
    max_programs: int = knob(0, low=0)  # the first N programs of the split by name; 0: all
    # Self-play games that start from a perturbed base order (mallocgame.md 3c), as
    # restarts draws them: msa's key times log-normal noise of a width drawn per game.
    base_order_share: float = knob(0.0, low=0.0, high=1.0)
    base_order_sigma: float = knob(1.0, above=0.0)
    # Above 1, such a game starts from the order restarts keeps after this many tries at
    # the game's capacity (msa's own among them) instead of from a single draw.
    base_order_tries: int = knob(1, low=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.capacity_fraction_min > self.capacity_fraction_max:
            raise ConfigError("workloads.capacity_fraction_min is above capacity_fraction_max")


@dataclasses.dataclass(frozen=True)
class GameConfig(Section):
    """The observation and action sizes of the mallocGame."""

    SECTION = "game"
    # The defaults are env.observation.SHIPPED_GAME's (one source for both).
    num_offset_actions: int = knob(SHIPPED_GAME.num_offset_actions, low=1)
    occupancy_bins: int = knob(SHIPPED_GAME.occupancy_bins, low=1)
    window: int = knob(SHIPPED_GAME.window, low=0)
    lookahead: bool = SHIPPED_GAME.lookahead  # msa-completion value of every action observed
    # Game v2 (mallocgame.md 3b): K pick slots choose which buffer is decided next
    # (1: v1, msa's order); the encoding is "window", "rules", "hybrid" or "dynamic".
    # "dynamic" with K = 8 (seven rules, then the dynamic rule) won the measurement of
    # BENCHMARKS.md section (g).
    pick_candidates: int = knob(SHIPPED_GAME.pick_candidates, low=1, high=64)
    pick_encoding: str = SHIPPED_GAME.pick_encoding

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            pick_sources(self.pick_candidates, self.pick_encoding)
        except ValueError as error:
            raise ConfigError(f"game.pick_candidates/pick_encoding: {error}") from None


#: Representation encoders: "mlp" reads the concatenated observation; "set" reads each
#: action's and each upcoming buffer's features with one set of weights per kind and mixes
#: them with self-attention (``agent.networks.SetEncoder``).
ENCODERS = ("mlp", "set")


@dataclasses.dataclass(frozen=True)
class NetworkSection(Section):
    """Sizes of the representation, dynamics and prediction networks."""

    SECTION = "network"
    latent_size: int = knob(128, low=1)
    hidden: tuple = knob((256, 256), low=1)
    value_bins: int = knob(49, low=2)
    value_low: float = -2.0
    value_high: float = 10.0
    value_scale: float = knob(100.0, above=0.0)  # returns are fractions: use percent
    encoder: str = ENCODERS[0]
    token_size: int = knob(64, low=4)  # the "set" encoder's token width (4 heads)
    attention_layers: int = knob(1, low=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.encoder not in ENCODERS:
            raise ConfigError(f"network.encoder must be one of {', '.join(ENCODERS)}")
        if self.token_size % 4:
            raise ConfigError("network.token_size must be a multiple of 4 (attention heads)")
        if not self.hidden:
            raise ConfigError("network.hidden needs at least one layer")
        if self.value_low >= self.value_high:
            raise ConfigError("network.value_low must be below network.value_high")


@dataclasses.dataclass(frozen=True)
class SearchConfig(Section):
    """The batched Gumbel MuZero search."""

    SECTION = "search"
    num_simulations: int = knob(16, low=1)
    max_considered_actions: int = knob(16, low=1)
    # The root's completed Q-values mix the learned model's with the lookahead's
    # msa-completion returns: (1 - w) q + w z, as AlphaGo mixed value network and
    # rollouts (0: learned only).
    rollout_weight: float = knob(0.5, low=0.0, high=1.0)


@dataclasses.dataclass(frozen=True)
class ReplaySection(Section):
    """Sequences, prioritization and the sample-to-insert rate limiter."""

    SECTION = "replay"
    unroll_steps: int = knob(5, low=1)
    td_steps: int = knob(10, low=1)
    max_size: int = knob(100_000, low=1)
    min_size_to_sample: int = knob(1_000, low=1)
    samples_per_insert: float = knob(1.0, low=0.0)  # 0: no rate limit
    priority_exponent: float = knob(1.0, low=0.0)
    importance_beta: float = knob(0.5, low=0.0, high=1.0)
    period: int = knob(1, low=1)  # a new sequence starts every `period` steps
    error_buffer: float = knob(2_000.0, low=0.0)  # rate limiter slack, in samples
    num_cpus: float = knob(0.5, above=0.0)  # the Reverb server actor

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_size_to_sample > self.max_size:
            raise ConfigError("replay.min_size_to_sample is above replay.max_size")


@dataclasses.dataclass(frozen=True)
class LearnerSection(Section):
    """The optimizer, the loss weights and the learner's resources."""

    SECTION = "learner"
    batch_size: int = knob(64, low=1)
    learning_rate: float = knob(3e-4, above=0.0)
    warmup_steps: int = knob(200, low=0)
    decay_steps: int = knob(100_000, low=1)
    weight_decay: float = knob(1e-4, low=0.0)
    max_grad_norm: float = knob(5.0, above=0.0)
    value_weight: float = knob(0.25, low=0.0)
    target_update_interval: int = knob(100, low=1)
    steps_per_call: int = knob(20, low=1)  # learner steps per call from the supervisor
    # Updates fused into one jitted call (lax.scan over stacked batches): fewer dispatches
    # and host round trips per step on an accelerator; a call then trains whole groups.
    updates_per_jit: int = knob(1, low=1)
    prefetch_batches: int = knob(2, low=0)  # calls' batches a thread stages ahead; 0: none
    num_cpus: float = knob(1.0, above=0.0)
    num_gpus: int = knob(-1, low=-1, high=1)  # -1: a GPU when there is one; 0 or 1 forces


@dataclasses.dataclass(frozen=True)
class ActorsConfig(Section):
    """The self-play actors."""

    SECTION = "actors"
    num_games: int = knob(64, low=1)  # games per actor, searched in one batch
    num_actors: int = knob(2, low=1)  # self-play actors (distributed runs)
    num_cpus: float = knob(1.0, above=0.0)  # per actor; its XLA and numba threads too
    steps_per_call: int = knob(20, low=1)  # batched steps between parameter fetches
    resources: str = ""  # a custom Ray resource actors require, e.g. "selfplay"


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig(Section):
    """The evaluator: the newest parameters on the held-out programs."""

    SECTION = "evaluator"
    interval_s: float = knob(120.0, above=0.0)  # seconds between evaluations
    fractions: tuple = knob((0.1, 0.25), above=0.0, high=1.0)  # held-out capacities
    # Every evaluation plays the next held-out case of at least `large_buffers` buffers,
    # then the other cases in rotation until `budget_s` seconds are spent (0: that one).
    large_buffers: int = knob(400, low=0)
    # Programs of this folder (`mallocmuzero workloads large` writes workloads/large) with
    # at most `large_programs_max_buffers` buffers join the held-out cases ("": none).
    large_programs: str = knob("")
    large_programs_max_buffers: int = knob(1500, low=1)
    budget_s: float = knob(60.0, low=0.0)
    images: int = knob(2, low=0)  # memory maps of the agent and msa per evaluation
    num_cpus: float = knob(0.5, above=0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fractions:
            raise ConfigError("evaluator.fractions needs at least one capacity fraction")


@dataclasses.dataclass(frozen=True)
class RunConfig(Section):
    """Length, logging and checkpoints of a run."""

    SECTION = "run"
    max_steps: int = knob(0, low=0)  # learner steps; 0 = unbounded
    max_minutes: float = knob(0.0, low=0.0)  # 0 = unbounded
    log_interval_s: float = knob(10.0, above=0.0)  # progress line and TensorBoard scalars
    checkpoint_interval_minutes: float = knob(5.0, above=0.0)
    keep_checkpoints: int = knob(3, low=1)
    # Training minutes (summed over resumes) at which the agent's parameters are kept for
    # good in RUN/snapshots/minute_<m>/ (a learning curve's points; params only, small).
    snapshot_minutes: tuple = knob((10.0, 20.0, 40.0, 80.0, 120.0, 160.0, 240.0), above=0.0)


SECTIONS: dict[str, type] = {
    cls.SECTION: cls
    for cls in (
        WorkloadsConfig, GameConfig, NetworkSection, SearchConfig, ReplaySection,
        LearnerSection, ActorsConfig, EvaluatorConfig, RunConfig,
    )
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Every knob of a training run, checked when built (ranges and cross-field rules)."""

    seed: int = 0
    workloads: WorkloadsConfig = dataclasses.field(default_factory=WorkloadsConfig)
    game: GameConfig = dataclasses.field(default_factory=GameConfig)
    network: NetworkSection = dataclasses.field(default_factory=NetworkSection)
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    replay: ReplaySection = dataclasses.field(default_factory=ReplaySection)
    learner: LearnerSection = dataclasses.field(default_factory=LearnerSection)
    actors: ActorsConfig = dataclasses.field(default_factory=ActorsConfig)
    evaluator: EvaluatorConfig = dataclasses.field(default_factory=EvaluatorConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed expects int, got {self.seed!r}")
        problem = rollout_weight_problem(self.search.rollout_weight, self.game.lookahead)
        if problem:
            raise ConfigError(f"search.rollout_weight {problem}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (tuples as lists), the form checkpoints store."""
        return dataclasses.asdict(self)


def parse_config(data: Mapping[str, Any]) -> ExperimentConfig:
    """Build and check an :class:`ExperimentConfig` from nested mappings.

    Unknown sections or keys are errors naming them; missing keys take the defaults.
    """
    sections = {}
    for name, values in data.items():
        if name == "seed":
            continue
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r} (known: {', '.join(SECTIONS)})")
        cls = SECTIONS[name]
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"unknown config key '{name}.{key}' (known here: {', '.join(sorted(known))})"
                )
        sections[name] = cls(**dict(values))
    return ExperimentConfig(seed=data.get("seed", 0), **sections)


# What a checkpoint written before a key existed behaved as. Keys not listed here take
# today's default, which is what those versions used.
LEGACY_VALUES: dict[str, dict[str, Any]] = {
    "game": {"lookahead": False, "pick_candidates": 1},  # before the lookahead; v1
    "search": {"rollout_weight": 0.0},  # before rollout mixing
}

# Keys older versions wrote that no longer mean anything.
RETIRED_KEYS: dict[str, set[str]] = {
    "evaluator": {"max_workloads"},  # replaced by large_buffers and budget_s
}


def migrate(data: Mapping[str, Any]) -> ExperimentConfig:
    """The config a checkpoint stored, from any version, as today's typed config."""
    upgraded = {name: dict(values) if isinstance(values, Mapping) else values
                for name, values in data.items()}  # fmt: skip
    for section, retired in RETIRED_KEYS.items():
        for key in retired & set(upgraded.get(section, {})):
            del upgraded[section][key]
    for section, legacy in LEGACY_VALUES.items():
        stored = upgraded.setdefault(section, {})
        for key, value in legacy.items():
            stored.setdefault(key, value)
    return parse_config(upgraded)


def with_values(config: ExperimentConfig, values: Mapping[str, Any]) -> ExperimentConfig:
    """A checked copy of ``config`` with dotted keys replaced: ``{"run.max_steps": 40}``."""
    data = config.to_dict()
    for key, value in values.items():
        section, _, name = key.partition(".")
        if section not in data or not isinstance(data[section], dict):
            raise ConfigError(f"unknown config key {key!r}")
        data[section][name] = value
    return parse_config(data)
