"""Parse HLO text (the optimized module XLA dumps) into instructions with shapes.

:mod:`mallocmuzero.env.importers.hlo_costs` counts their FLOPs and bytes.
"""

from __future__ import annotations

import dataclasses
import math
import re

from mallocmuzero.errors import WorkloadError, where

DTYPE_BYTES = {
    "pred": 1, "s2": 1, "u2": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1,
    "f8e4m3b11fnuz": 1, "f8e4m3fnuz": 1, "f8e5m2fnuz": 1, "s16": 2, "u16": 2, "f16": 2,
    "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8,
    "c128": 16, "token": 0,
}  # fmt: skip

#: Opcodes that touch no memory of their own (they alias or pass buffers through).
FREE_OPS = {
    "parameter", "tuple", "get-tuple-element", "bitcast", "while", "conditional", "call",
    "after-all", "opt-barrier", "add-dependency", "constant",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Shape:
    """An array shape (``dtype``, ``dims``) or a tuple of shapes (``elements``)."""

    dtype: str
    dims: tuple[int, ...] = ()
    elements: tuple[Shape, ...] | None = None

    @property
    def num_elements(self) -> int:
        """Elements of an array shape (sum over a tuple's leaves)."""
        if self.elements is not None:
            return sum(e.num_elements for e in self.elements)
        return math.prod(self.dims)

    @property
    def bytes(self) -> int:
        """Bytes of an array; for a tuple, its table of pointers (8 bytes each), as XLA."""
        if self.elements is not None:
            return 8 * len(self.elements)
        return DTYPE_BYTES.get(self.dtype, 4) * math.prod(self.dims)


@dataclasses.dataclass
class Instruction:
    """One HLO instruction: name, opcode, result shape, operand names and attributes."""

    name: str
    opcode: str
    shape: Shape
    operands: list[str]
    attrs: str
    computation: str
    is_root: bool = False


@dataclasses.dataclass
class Module:
    """A parsed HLO module: computations (instruction lists) and the entry's name."""

    name: str
    computations: dict[str, list[Instruction]]
    entry: str

    def instruction_index(self) -> dict[str, Instruction]:
        """Every instruction of the module by name (HLO names are unique in a module)."""
        return {i.name: i for instrs in self.computations.values() for i in instrs}


def _balanced(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]``."""
    depth = 0
    pairs = {"(": ")", "{": "}", "[": "]"}
    closing = set(pairs.values())
    for i in range(start, len(text)):
        c = text[i]
        if c in pairs:
            depth += 1
        elif c in closing:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced brackets")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([^\]]*)\]")


def parse_shape(text: str) -> Shape:
    """Parse an HLO shape such as ``f32[32,128]{1,0}`` or ``(f32[2], s32[])``."""
    text = text.strip()
    if text.startswith("("):
        inner = text[1 : _balanced(text, 0) - 1]
        return Shape("tuple", elements=tuple(parse_shape(p) for p in _split_top(inner)))
    m = _ARRAY.match(text)
    if not m:
        raise ValueError(f"cannot parse shape {text!r}")
    dims = tuple(int(d.replace("<=", "")) for d in m.group(2).split(",") if d.strip())
    return Shape(m.group(1), dims)


_COMMENT = re.compile(r"/\*.*?\*/")
_COMP = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*(\([^{]*\))?\s*(->\s*.*?)?\s*\{\s*$")


def parse_module(text: str, source: str = "HLO") -> Module:
    """Parse HLO text into a :class:`Module`; raises WorkloadError on malformed text."""
    computations: dict[str, list[Instruction]] = {}
    entry = None
    current: str | None = None
    name = "module"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).strip()
        if not line or line.startswith("//"):
            continue
        if line.startswith("HloModule"):
            name = line.split()[1].rstrip(",")
            continue
        if current is None:
            m = _COMP.match(line)
            if m:
                current = m.group(2)
                computations[current] = []
                if m.group(1):
                    entry = current
            continue
        if line.startswith("}"):
            current = None
            continue
        try:
            computations[current].append(_parse_instruction(line, current))
        except (ValueError, IndexError) as exc:
            raise WorkloadError(
                where(source, f"line {lineno}", f"bad HLO instruction: {exc}")
            ) from None
    if entry is None:
        raise WorkloadError(where(source, None, "no ENTRY computation in the HLO text"))
    return Module(name=name, computations=computations, entry=entry)


def _parse_instruction(line: str, computation: str) -> Instruction:
    is_root = line.startswith("ROOT ")
    if is_root:
        line = line[5:]
    lhs, rhs = line.split(" = ", 1)
    name = lhs.strip().lstrip("%")
    rhs = rhs.strip()
    if rhs.startswith("("):
        end = _balanced(rhs, 0)
    else:
        end = rhs.index(" ")
        # Layouts like {1,0} or {1,0:T(8,128)} follow the dims directly.
        if "{" in rhs[:end]:
            end = _balanced(rhs, rhs.index("{"))
    shape = parse_shape(rhs[:end])
    rest = rhs[end:].strip()
    paren = rest.index("(")
    opcode = rest[:paren].strip()
    close = _balanced(rest, paren)
    args = rest[paren + 1 : close - 1]
    attrs = rest[close:]
    operands = []
    if opcode == "parameter":
        return Instruction(name, opcode, shape, [], args, computation, is_root)
    if opcode != "constant":
        for part in _split_top(args):
            token = part.split()[-1] if part else ""
            if token:
                operands.append(token.lstrip("%"))
    return Instruction(name, opcode, shape, operands, attrs, computation, is_root)


def attr(attrs: str, key: str) -> str | None:
    """The value of attribute ``key`` in an instruction's attribute text, or None."""
    m = re.search(rf"\b{key}=", attrs)
    if not m:
        return None
    start = m.end()
    if start < len(attrs) and attrs[start] in "{(":
        return attrs[start : _balanced(attrs, start)]
    end = start
    while end < len(attrs) and attrs[end] not in ", ":
        end += 1
    return attrs[start:end]


def dims_list(value: str | None) -> list[int]:
    """Dimension numbers of an attribute value such as ``{0,2}``."""
    if not value:
        return []
    return [int(x) for x in value.strip("{}").split(",") if x.strip()]


def trip_count(instr: Instruction) -> int | None:
    """The ``known_trip_count`` of a while instruction, when XLA recorded one."""
    m = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', instr.attrs)
    return int(m.group(1)) if m else None


def called_computations(instr: Instruction) -> list[str]:
    """Names of the computations an instruction calls (body, condition, calls, to_apply)."""
    names = []
    for key in ("calls", "to_apply", "body", "condition"):
        value = attr(instr.attrs, key)
        if value:
            names += [v.strip().lstrip("%") for v in value.strip("{}").split(",") if v.strip()]
    return names
