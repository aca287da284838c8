"""Where mallocmuzero keeps what it compiles: one folder per user, as private as ``__pycache__``."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mallocmuzero`` (``~/.cache/mallocmuzero`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mallocmuzero"
