"""numba's ``njit`` for the game's kernels, with an on-disk cache no stale code survives.

numba keys a cached function on its own source file only: a function that calls (and
inlines) a kernel of another module keeps the callee's old machine code after that
module changes, as after a ``git pull`` that touches ``kernels.py`` alone. So the kernels'
cache lives in a folder named after a digest of every ``*kernels.py`` module of the
package (and numba's version): any change to any kernel starts a fresh cache.

The folder is ``$XDG_CACHE_HOME/mallocmuzero/numba/<digest>`` (``~/.cache`` by default),
as private as ``__pycache__``; ``NUMBA_CACHE_DIR``, when set, wins (numba's own rule, and
then the user owns staleness).

Inside it, a kernel's cache entry is keyed on the *content* of its module, not on the
module's path and modification time as numba's own locators do. So one package unpacked
anywhere with any timestamps (``ray job submit`` ships it to a fresh temporary folder per
Ray session, a ``git checkout`` touches every file) reuses the compiled kernels instead of
compiling them again: about 40 CPU-seconds per process, in every actor and evaluator.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numba
from numba.core import caching

from mallocmuzero.cache import PACKAGE_ROOT, sources_digest, user_cache_dir


def kernel_sources_digest(root: Path = PACKAGE_ROOT) -> str:
    """A digest of every ``*kernels.py`` module in the package's folders, and numba's version."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    kernels = sorted(f for folder in folders for f in folder.glob("*kernels.py"))
    return sources_digest([numba.__version__], kernels)


def kernel_cache_dir(root: Path = PACKAGE_ROOT) -> Path:
    """Where the kernels' compiled code is cached for the current sources."""
    return user_cache_dir() / "numba" / kernel_sources_digest(root)


@functools.cache
def package_cache_dir() -> Path:
    """``kernel_cache_dir()`` of this process's package, computed once."""
    return kernel_cache_dir()


@functools.cache
def source_digest(source: Path) -> str:
    """A module's content digest, read once per process (every kernel of it asks)."""
    return hashlib.sha256(source.read_bytes()).hexdigest()


class ContentKeyedLocator(caching._CacheLocator):
    """numba's cache locator for the package's kernels.

    One folder per kernel-sources digest; entries stamped with their module's content
    digest, so neither the package's path nor its files' timestamps matter.
    """

    def __init__(self, py_func, source: Path):
        self._lineno = py_func.__code__.co_firstlineno
        self._stamp = source_digest(source)
        self._cache_path = str(package_cache_dir() / source.parent.relative_to(PACKAGE_ROOT))

    def get_cache_path(self) -> str:
        """The kernel module's folder under the digest's cache folder."""
        return self._cache_path

    def get_source_stamp(self) -> str:
        """The module's content digest: an entry is fresh while the source is unchanged."""
        return self._stamp

    def get_disambiguator(self) -> str:
        """The function's first line, as numba's own locators use."""
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file: str):
        """A locator for a function of this package, unless ``NUMBA_CACHE_DIR`` is set.

        ``None`` (numba's own locators then) for any other file, or an unwritable cache.
        """
        source = Path(py_file).resolve()
        if os.environ.get("NUMBA_CACHE_DIR") or not source.is_relative_to(PACKAGE_ROOT):
            return None
        locator = cls(py_func, source)
        try:
            locator.ensure_cache_path()
        except OSError:  # not writable: numba's own locators, as for any unwritable cache
            return None
        return locator


if ContentKeyedLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, ContentKeyedLocator)

jit = numba.njit(cache=True, nogil=True)  # every game kernel: compiled once, cached on disk
