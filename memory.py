"""Give freed heap memory back to the operating system (glibc's ``malloc_trim``).

A Reverb checkpoint serialises the whole table: the server allocates buffers the size of
the table, frees them, and glibc keeps the freed pages in its arenas, so the process's
resident memory ratchets up to the checkpoint's peak and stays there. Trimming after
each checkpoint returns those pages. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> bool:
    """``malloc_trim(0)``: whether glibc released any memory (False where unsupported)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
