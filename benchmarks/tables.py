"""What every benchmark's report shares: markdown tables and the machine's name."""

from __future__ import annotations

import os
import platform
import time


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table of text cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """The processor and its core count, as the reports name the machine of a figure."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def written_on() -> str:
    """Today's date and :func:`machine`: where and when a table was measured."""
    return f"{time.strftime('%Y-%m-%d')} ({machine()})"
