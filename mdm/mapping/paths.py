"""Paths into nested JSON payloads: ``a.b``, ``a[0]``, ``a[*].b`` and ``a[type=work].b``.

A small compiled subset rather than a JSONPath engine: it covers the shapes the shipped
profiles read (Greenhouse, Workday, Salesforce) and resolves in a few microseconds, and
every value found comes back with its location, so an error can name the exact input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_STEP = re.compile(
    r"""
    (?P<key>[^.\[\]=]+)                    # a key
    | \[(?P<index>-?\d+)\]                 # [0]
    | \[(?P<all>\*)\]                      # [*]
    | \[(?P<fkey>[^=\[\]]+)=(?P<fval>[^\]]*)\]  # [type=work]
    | (?P<dot>\.)
    """,
    re.VERBOSE,
)


class BadPath(ValueError):
    """A path expression that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    steps: tuple[tuple[str, Any, Any], ...]
    # A path of one key (most canonical fields) is read with one dict lookup.
    key: str | None = None

    @property
    def single(self) -> bool:
        """True when the path can find at most one value."""
        return all(kind in ("key", "index") for kind, _, _ in self.steps)

    def find(self, root: Any, prefix: str = "data") -> list[tuple[str, Any]]:
        """Every non-null value at this path, with its dotted location (``data.a.0.b``)."""
        found: list[tuple[str, Any]] = [(prefix, root)]
        for kind, arg, value in self.steps:
            found = _step(found, kind, arg, value)
            if not found:
                return found
        return [(where, v) for where, v in found if v is not None]

    def first(self, root: Any, prefix: str = "data") -> tuple[str, Any] | None:
        if self.key is not None:
            if type(root) is dict or isinstance(root, Mapping):
                value = root.get(self.key)
                return None if value is None else (f"{prefix}.{self.key}", value)
            return None
        found = self.find(root, prefix)
        return found[0] if found else None


def _step(found: list[tuple[str, Any]], kind: str, arg: Any, value: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for where, node in found:
        if kind == "key":
            if (type(node) is dict or isinstance(node, Mapping)) and arg in node:
                out.append((f"{where}.{arg}", node[arg]))
        elif isinstance(node, list):
            if kind == "index":
                if -len(node) <= arg < len(node):
                    i = arg % len(node)
                    out.append((f"{where}.{i}", node[i]))
            elif kind == "all":
                out.extend((f"{where}.{i}", item) for i, item in enumerate(node))
            else:  # filter
                out.extend(
                    (f"{where}.{i}", item)
                    for i, item in enumerate(node)
                    if isinstance(item, Mapping) and _text(item.get(arg)) == value
                )
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def compile_path(text: str) -> JsonPath:
    """Compile a path; raise `BadPath` saying what is wrong with it."""
    steps: list[tuple[str, Any, Any]] = []
    pos = 0
    expect_key = True
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise BadPath(f"cannot read the path {text!r} at character {pos + 1}")
        if m["dot"]:
            if expect_key:
                raise BadPath(f"empty key in the path {text!r}")
            expect_key = True
        elif m["key"] is not None:
            if not expect_key:
                raise BadPath(f"missing '.' before {m['key']!r} in the path {text!r}")
            steps.append(("key", m["key"].strip(), None))
            expect_key = False
        elif expect_key and steps:
            raise BadPath(f"'[' cannot follow '.' in the path {text!r}")
        elif m["index"] is not None:
            steps.append(("index", int(m["index"]), None))
            expect_key = False
        elif m["all"]:
            steps.append(("all", None, None))
            expect_key = False
        else:
            steps.append(("filter", m["fkey"].strip(), m["fval"].strip()))
            expect_key = False
        pos = m.end()
    if not steps or expect_key:
        raise BadPath(f"the path {text!r} is empty or ends with '.'")
    single_key = steps[0][1] if len(steps) == 1 and steps[0][0] == "key" else None
    return JsonPath(text, tuple(steps), single_key)


def pointer(dotted: str) -> str:
    """The RFC 6901 JSON pointer of a dotted location (``data.a.0`` -> ``/data/a/0``)."""
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in dotted.split("."))
