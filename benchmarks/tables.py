"""What every benchmark's report shares: markdown tables and the machine's name."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path


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


def write_report(result: dict, out: str | Path, markdown: Callable[[dict], str]) -> Path:
    """Write ``result``'s ``markdown`` at ``out`` and ``result`` as JSON beside it.

    The JSON has ``out``'s name with ``.json``; one line says where. Returns ``out``.
    """
    from mallocmuzero.env.workload import write_json_atomic

    out = Path(out)
    write_json_atomic(result, out.with_suffix(".json"))
    out.write_text(markdown(result))
    print(f"wrote {out}", flush=True)
    return out
