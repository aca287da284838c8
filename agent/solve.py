"""The trained agent at solve time: load a checkpoint, build its searches, solve.

The inference path of ``mallocmuzero solve --solver agent`` and of ``mmz.load_agent``:
training (``cluster/``) builds its self-play and evaluator searches with the same
:func:`observation_spec`, :func:`agent_network` and :func:`agent_search`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from mallocmuzero.agent.checkpoint import dataclass_from_section, load_checkpoint, network_config
from mallocmuzero.agent.exported import ExportedSearch
from mallocmuzero.agent.networks import NetworkConfig
from mallocmuzero.agent.rollouts import agent_solve, compile_searches
from mallocmuzero.agent.search import lookahead_returns, make_search
from mallocmuzero.configs.schema import ExperimentConfig, rollout_weight_problem
from mallocmuzero.env.observation import ObservationSpec
from mallocmuzero.env.solution import Solution
from mallocmuzero.env.workload import Workload
from mallocmuzero.errors import ArgumentError, UserError, check_time_limit
from mallocmuzero.solvers.registry import pretrained_checkpoint
from mallocmuzero.solvers.restarts import HYBRID_SHARE, OWN_ORDER_SHARE, restarts_then


def observation_spec(config: ExperimentConfig) -> ObservationSpec:
    """The game's observation sizes from the config."""
    return dataclass_from_section(ObservationSpec, config.game)


def agent_search(
    config: ExperimentConfig,
    net: NetworkConfig | None = None,
    rollout_weight: float | None = None,
):
    """The jitted batched search of the config (see :func:`agent.search.make_search`).

    ``net`` defaults to the config's network, ``rollout_weight`` to the config's
    ``search.rollout_weight``; mixing rollouts reads the lookahead block, which
    checkpoints older than it lack.
    """
    spec = observation_spec(config)
    if rollout_weight is None:
        rollout_weight = config.search.rollout_weight
    problem = rollout_weight_problem(rollout_weight, spec.lookahead)
    if problem:
        raise UserError(f"a rollout weight {problem}")
    return make_search(
        net or agent_network(config),
        config.search.num_simulations,
        config.search.max_considered_actions,
        rollout_weight=rollout_weight,
        rollout_returns=lookahead_returns(spec) if rollout_weight > 0 else None,
    )


@dataclasses.dataclass
class LoadedAgent:
    """A checkpoint ready to play: parameters, config, network, observation spec, searches.

    ``searches`` holds one search per solve-time rollout weight: each plays one greedy
    rollout, and the first also plays the sampled ones.
    """

    params: Any
    config: ExperimentConfig
    meta: dict[str, Any]
    net: NetworkConfig
    spec: ObservationSpec
    searches: list[Callable]

    @property
    def pick(self) -> tuple[int, str]:
        """The game the agent plays: (pick slots K, their encoding); K = 1 is game v1."""
        return self.spec.pick_candidates, self.spec.pick_encoding

    def compile(self, samples: int = 0) -> LoadedAgent:
        """Compile every search shape a solve with ``samples`` sampled rollouts runs; self.

        A timed solve then spends its limit on rollouts, not on XLA.
        """
        compile_searches(self.searches, self.params, self.spec, samples)
        return self

    def solve(
        self,
        workload: Workload,
        samples: int = 0,
        seed: int = 0,
        time_limit: float | None = None,
        restarts_share: float | None = None,
        own_order_share: float | None = None,
    ) -> Solution:
        """The agent's rollouts on ``workload``, the best by the cost model.

        See :func:`agent_solve`; anytime with ``time_limit`` seconds. With
        ``restarts_share`` > 0, that share of the limit goes to restarts first and the agent
        plays the rest from the best order found (:func:`restarts_then`); None means
        :data:`HYBRID_SHARE` with a time limit (the best learned solver measured), else 0.
        In that hybrid the agent first plays its greedy rollouts from msa's own order, for
        at most ``own_order_share`` of the limit (None: :data:`OWN_ORDER_SHARE`).
        """
        restarts_share = resolve_restarts_share(restarts_share, time_limit)
        own_order_share = resolve_own_order_share(own_order_share, restarts_share)
        first, *others = self.searches

        def play(order: np.ndarray | None, seconds: float | None, anytime: bool = True) -> Solution:
            return agent_solve(
                workload, self.params, self.spec, first, samples=samples, seed=seed,
                more_greedy=others, time_limit=seconds, order=order, anytime=anytime,
            )  # fmt: skip

        if not restarts_share:
            return play(None, time_limit)
        check_restarts_share(restarts_share, time_limit)
        own_order = partial(play, None, anytime=False)  # its rollouts, then the time is left on
        return restarts_then(workload, play, time_limit, restarts_share, seed, own_order_share,
                             own_order)  # fmt: skip


def solve_time_weights(config: ExperimentConfig) -> list[float]:
    """Default solve-time rollout weights: the trained one, and 1 (the rollouts' verdict).

    A network trained without lookahead has only weight 0.
    """
    trained = config.search.rollout_weight
    if not config.game.lookahead:
        return [trained]
    return [trained] if trained == 1.0 else [trained, 1.0]


def load_agent(checkpoint: str, rollout_weights: Sequence[float] | None = None) -> LoadedAgent:
    """Load an agent checkpoint and build one search per solve-time rollout weight.

    ``rollout_weights`` defaults to :func:`solve_time_weights` of the checkpoint's config.
    """
    params, config, meta, net = load_checkpoint(checkpoint)
    weights = list(rollout_weights) if rollout_weights else solve_time_weights(config)
    settings = {"network": dataclasses.asdict(net), "search": dataclasses.asdict(config.search),
                "game": dataclasses.asdict(config.game)}  # fmt: skip
    searches = [
        ExportedSearch(agent_search(config, net, weight), {**settings, "weight": weight})
        for weight in weights
    ]
    return LoadedAgent(params, config, meta, net, observation_spec(config), searches)


def solve_agent(
    workload: Workload,
    checkpoint: str | None = None,
    samples: int = 0,
    seed: int = 0,
    rollout_weights: Sequence[float] | None = None,
    time_limit: float | None = None,
    restarts_share: float | None = None,
    own_order_share: float | None = None,
) -> Solution:
    """The trained agent alone: a greedy search per rollout weight, ``samples`` sampled ones.

    Without ``checkpoint``, the checkpoint shipped in the package is used;
    ``rollout_weights`` default to the checkpoint's (see :func:`load_agent`). With
    ``time_limit`` seconds it keeps playing sampled rollouts until the limit (anytime).
    ``restarts_share`` > 0 gives that share of the limit to restarts first, and the agent
    plays from the best order found; by default (None) half of a time limit, and 0
    without one; ``own_order_share`` of the limit then goes first to the agent from msa's
    own order (None: :data:`OWN_ORDER_SHARE`; see :meth:`LoadedAgent.solve`).
    """
    if not checkpoint:
        shipped = pretrained_checkpoint()
        if not (shipped / "params.msgpack").is_file():
            raise UserError(
                f"--solver agent needs --checkpoint DIR ({shipped} holds no shipped checkpoint)"
            )
        checkpoint = str(shipped)
    check_time_limit(time_limit)
    restarts_share = resolve_restarts_share(restarts_share, time_limit)
    own_order_share = resolve_own_order_share(own_order_share, restarts_share)
    agent = load_agent(checkpoint, rollout_weights).compile(samples)
    return agent.solve(workload, samples, seed, time_limit, restarts_share, own_order_share)


def resolve_restarts_share(share: float | None, time_limit: float | None) -> float:
    """``share``, checked; for None, :data:`HYBRID_SHARE` with a time limit, else 0."""
    if share is None:
        return HYBRID_SHARE if time_limit is not None else 0.0
    check_restarts_share(share, time_limit)
    return share


def check_restarts_share(share: float, time_limit: float | None) -> None:
    """A user error unless ``share`` is 0 or in (0, 1) with a time limit."""
    if share and not 0.0 < share < 1.0:
        raise ArgumentError("restarts_share", f"must be in [0, 1) (got {share})")
    if share and time_limit is None:
        raise ArgumentError("restarts_share", "needs a time limit (the share is of the limit)")


def resolve_own_order_share(share: float | None, restarts_share: float) -> float:
    """``share``, checked; :data:`OWN_ORDER_SHARE` for None (0 without the hybrid)."""
    if share is None:
        return OWN_ORDER_SHARE if restarts_share else 0.0
    if not 0.0 <= share < 1.0:
        raise ArgumentError("own_order_share", f"must be in [0, 1) (got {share})")
    if share and not restarts_share:
        raise ArgumentError(
            "own_order_share", "needs the hybrid (a time limit and a restarts share > 0)"
        )
    return share


def agent_network(config: ExperimentConfig) -> NetworkConfig:
    """The network configuration of an experiment."""
    return network_config(config, observation_spec(config).num_actions)
