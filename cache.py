"""Where mallocmuzero keeps what it compiles: one folder per user, as private as ``__pycache__``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent  # the installed package or the checkout


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mallocmuzero`` (``~/.cache/mallocmuzero`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mallocmuzero"


def sources_digest(versions: Iterable[str], sources: Iterable[Path]) -> str:
    """A short digest of ``versions`` and the names and bytes of ``sources``.

    The key of a cache folder that no changed code or library (``versions``: its pins)
    may reuse.
    """
    digest = hashlib.sha256()
    for version in versions:
        digest.update(f"{version};".encode())
    for path in sources:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
