"""The reference of scenario and experiment files, generated from their pydantic models.

``crossmargin schema`` prints it; ``docs/reference.md`` is the same text, written by
``crossmargin schema --markdown`` and checked by the tests to be current. Every field
is listed with its dotted key, type, default, bounds or allowed values, and the
description (with its unit) that the model's code gives it.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["Row", "markdown", "rows", "text"]


class Row(typing.NamedTuple):
    """One field of a file: dotted key, type, default, bounds, description."""

    key: str
    type: str
    default: str
    bounds: str
    description: str


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models nested in an annotation (``X``, ``X | None``, ``tuple[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        inner = _type_name(args[0]) if args else "any"
        return f"list of {inner}"
    if origin is dict:
        k, v = typing.get_args(annotation)
        return f"table of {_type_name(k)} → {_type_name(v)}"
    if annotation is type(None):
        return "none"
    if annotation is Any:
        return "any value"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "table"
        return {"float": "number", "int": "integer", "str": "string", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _bounds(info: FieldInfo) -> str:
    parts = []
    for m in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v:g}" if isinstance(v, float | int) else f"{sym} {v}")
        pattern = getattr(m, "pattern", None)
        if pattern:
            parts.append(f"matches {pattern}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    d = info.get_default(call_default_factory=True)
    if isinstance(d, BaseModel):
        return "(table)"
    if isinstance(d, float) and math.isinf(d):
        return "inf"
    if d is None:
        return "none"
    if isinstance(d, tuple | list) and d and isinstance(d[0], BaseModel):
        return f"{len(d)} entries"
    return repr(d)


def rows(model: type[BaseModel], prefix: str = "") -> Iterator[Row]:
    """Every field of ``model`` and of the models nested in it, depth first.

    Examples:
        >>> from crossmargin.model.scenario import Scenario
        >>> r = {row.key: row for row in rows(Scenario)}
        >>> r["liquidation.fee"].default, r["liquidation.fee"].bounds
        ('0.002', '≥ 0, < 0.2')
    """
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _models_in(info.annotation)
        yield Row(
            key,
            _type_name(info.annotation),
            _default(info),
            _bounds(info),
            " ".join((info.description or "").split()),
        )
        for sub in nested:
            many = typing.get_origin(info.annotation) in (tuple, list) or any(
                typing.get_origin(a) in (tuple, list) for a in typing.get_args(info.annotation)
            )
            yield from rows(sub, f"{key}.N." if many else f"{key}.")


def text(model: type[BaseModel]) -> str:
    """The reference as plain text, one field per line.

    Examples:
        >>> from crossmargin.model.scenario import Scenario
        >>> text(Scenario).splitlines()[1]
        'steps (integer; default 1440): ≥ 1; One-minute steps to run.'
    """
    out = []
    for r in rows(model):
        extra = "; ".join(x for x in (r.bounds, r.description) if x)
        out.append(f"{r.key} ({r.type}; default {r.default})" + (f": {extra}" if extra else ""))
    return "\n".join(out)


def markdown() -> str:
    """docs/reference.md: the scenario and experiment file references.

    Examples:
        >>> markdown().splitlines()[0]
        '# Scenario and experiment files: the reference'
    """
    from ..model.scenario import Scenario
    from .design import ExperimentFile

    def table(model: type[BaseModel]) -> str:
        lines = ["| key | type | default | bounds | meaning (unit) |", "|---|---|---|---|---|"]
        for r in rows(model):
            cells = [f"`{r.key}`", r.type, f"`{r.default}`", r.bounds, r.description]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)

    return (
        "# Scenario and experiment files: the reference\n\n"
        "Generated from the pydantic models by `crossmargin schema --markdown`; the tests "
        "check that this page is current. One step is one minute; volatilities are daily; "
        "money is USD. `N` in a key stands for an index into a list (`markets.0.tick`). "
        "Unknown keys are errors (with a suggestion when one is close).\n\n"
        "## Scenario (`crossmargin run FILE`, `Scenario.from_toml`)\n\n"
        + table(Scenario)
        + "\n\n## Experiment (`crossmargin sweep FILE`)\n\n"
        "`[overrides]`, `[grid]` and `[sample.bounds]` take dotted scenario keys from the "
        "table above.\n\n" + table(ExperimentFile) + "\n"
    )
