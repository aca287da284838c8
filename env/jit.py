"""numba's ``njit`` for the game's kernels, with an on-disk cache no stale code survives.

numba keys a cached function on its own source file only: a function that calls (and
inlines) a kernel of another module keeps the callee's old machine code after that
module changes, as after a ``git pull`` that touches ``kernels.py`` alone. So the kernels'
cache lives in a folder named after a digest of every ``*kernels.py`` module of the
package (and numba's version): any change to any kernel starts a fresh cache.

The folder is ``$XDG_CACHE_HOME/mallocmuzero/numba/<digest>`` (``~/.cache`` by default),
as private as ``__pycache__``; ``NUMBA_CACHE_DIR``, when set, wins (numba's own rule, and
then the user owns staleness).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def kernel_sources_digest(root: Path = PACKAGE_ROOT) -> str:
    """A digest of every ``*kernels.py`` module in the package's folders, and numba's version."""
    digest = hashlib.sha256(numba.__version__.encode())
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for path in sorted(f for folder in folders for f in folder.glob("*kernels.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def kernel_cache_dir() -> Path:
    """Where the kernels' compiled code is cached for the current sources."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mallocmuzero" / "numba" / kernel_sources_digest()


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = str(kernel_cache_dir())

jit = numba.njit(cache=True, nogil=True)  # every game kernel: compiled once, cached on disk
