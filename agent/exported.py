"""The agent's searches served from ahead-of-time exports kept in the user's cache.

JAX's persistent compilation cache spares a second process XLA's compile, not the
tracing and lowering before it: about 0.8 s per search shape of the shipped agent, three
shapes per timed solve. An export (``jax.export``: the lowered StableHLO module,
serialized) is traced once; a later process deserializes it and its compile comes from
the persistent cache, so ``solve --solver agent`` starts its clock about 2 s sooner.

One file per search identity, batch size and greedy flag, in
``$XDG_CACHE_HOME/mallocmuzero/searches/<digest>/``: the digest covers the versions of
JAX, jaxlib, flax and mctx and the source of every module of ``agent/`` and of the
observation, so a changed search or network never loads an old export. Parameters are
an input, not part of the export: one export serves every checkpoint of the same
network and search settings.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
from jax import export

from mallocmuzero.agent.search import SearchOutput
from mallocmuzero.cache import PACKAGE_ROOT, sources_digest, user_cache_dir
from mallocmuzero.env.workload import write_bytes_atomic

SOURCES = ("agent/*.py", "env/observation.py")  # what an exported search is made of
LIBRARIES = ("jax", "jaxlib", "flax", "mctx")


@functools.cache
def exports_dir() -> Path:
    """The export folder of this package's search sources and libraries."""
    versions = [f"{library}=={metadata.version(library)}" for library in LIBRARIES]
    sources = [path for pattern in SOURCES for path in sorted(PACKAGE_ROOT.glob(pattern))]
    return user_cache_dir() / "searches" / sources_digest(versions, sources)


class ExportedSearch:
    """A batched search whose every shape runs from an export, loaded or made on first use.

    ``search(params, rng, features, legal, greedy=...)`` is exported once per batch size
    and greedy flag into ``folder`` (default :func:`exports_dir`). ``identity`` names what
    the search computes beyond its sources (network and search settings, rollout weight);
    it keys the files with the shape. A folder that cannot be written keeps the exports
    in memory only; the answers are the same either way.
    """

    def __init__(self, search: Callable, identity: dict[str, Any], folder: Path | None = None):
        self.search = search
        self.identity = json.dumps(identity, sort_keys=True, default=str)
        self.folder = folder
        self.calls: dict[tuple[int, bool], Callable] = {}

    def __call__(self, params: Any, rng: Any, features: Any, legal: Any,
                 greedy: bool = False) -> SearchOutput:  # fmt: skip
        """One search over the batch, as the wrapped search answers it."""
        shape = (int(features.shape[0]), bool(greedy))
        call = self.calls.get(shape) or self._prepare(shape, (params, rng, features, legal))
        return SearchOutput(*call(params, rng, features, legal))

    def _cache_size(self) -> int:
        """Compiled shapes, as a jitted function's ``_cache_size`` counts them."""
        return sum(call._cache_size() for call in self.calls.values())

    def _path(self, shape: tuple[int, bool]) -> Path:
        key = hashlib.sha256(f"{self.identity}|{shape}".encode()).hexdigest()[:24]
        return (self.folder or exports_dir()) / f"{key}.bin"

    def _prepare(self, shape: tuple[int, bool], args: tuple) -> Callable:
        path = self._path(shape)
        try:
            exported = export.deserialize(bytearray(path.read_bytes()))
        except (OSError, ValueError):  # absent, unreadable or from another layout
            exported = self._export(shape[1], args)
            with contextlib.suppress(OSError):  # an unwritable cache: this process only
                write_bytes_atomic(exported.serialize(), path)
        self.calls[shape] = call = jax.jit(exported.call)
        return call

    def _export(self, greedy: bool, args: tuple) -> export.Exported:
        def as_tuple(params, rng, features, legal):
            return tuple(self.search(params, rng, features, legal, greedy=greedy))

        return export.export(jax.jit(as_tuple))(*args)
