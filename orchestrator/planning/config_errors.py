"""How a refused config is told: every mistake one line, "<source>: <key> = <value>: what is wrong; valid: ...".

The validators of the schema (orchestrator/planning/config.py) raise Mistakes with their full lines; pydantic's own
errors (a wrong type, an unknown or missing key) are rendered here in the same form, and all of them are listed at
once, each on its own line however odd the key or value.
"""
from __future__ import annotations

from types import UnionType
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from orchestrator.errors import UserError


class Mistakes(ValueError):
    """Every mistake a validator found, one full line each ("key = value: what is wrong; valid: ..."), so that a
    config is refused with all of its mistakes at once rather than the first one and a count."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def raise_if(lines: list[str]) -> None:
    if lines:
        raise Mistakes(lines)


_PLAIN_KEY = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+")


def shown_key(part: object) -> str:
    """A key as a line names it: as written when plain, quoted (escapes shown) otherwise."""
    text = str(part)
    return text if text and set(text) <= _PLAIN_KEY else repr(text)


def shown_value(value: object, limit: int = 60) -> str:
    """A value as a line shows it: its repr, shortened, so that a long or odd value never breaks the line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def one_line(text: str) -> str:
    # Whatever a message carries (a key with a newline, a path with a control character), it stays on one line.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe(error: dict, model_fields: dict, required: dict[str, str]) -> list[str]:
    """The lines of one pydantic error; `required`: what each required key takes, for the line that says it is
    missing."""
    original = (error.get("ctx") or {}).get("error")
    if isinstance(original, Mistakes):
        return list(original.lines)
    location = ".".join(shown_key(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        valid = _fields_at(error["loc"][:-1], model_fields)
        return [f"{location}: unknown key; valid keys here: {', '.join(valid)}"]
    if error["type"] == "missing":
        return [f"{location}: required key missing; valid: {required.get(str(error['loc'][-1]), 'a value')}"]
    message = error["msg"].removeprefix("Value error, ")
    shown = f", not {shown_value(error['input'])}" if "input" in error else ""
    span = _span(error["loc"], model_fields) if error["type"] in _BOUND_ERRORS else None
    return [(f"{location}: {message}{shown}" if location else message + shown) + (f"; valid: {span}" if span else "")]


_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _span(loc: tuple, model_fields: dict) -> str | None:
    """Both ends of the range a number at `loc` must lie in, as the schema declares them ("from 1 to 65536"), so that
    a refusal names the whole range and not only the end the value crossed."""
    annotation: object = None
    metadata: list = []
    fields = model_fields
    for part in loc:
        if fields is not None and isinstance(part, str) and part in fields:
            annotation, metadata = fields[part].annotation, list(fields[part].metadata)
        else:  # a list index or a dict key: the element's type
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[-1] if args else None
            metadata = []
        while get_origin(annotation) is Annotated:
            inner, *extra = get_args(annotation)
            metadata += [m for e in extra for m in getattr(e, "metadata", [e])]
            annotation = inner
        if get_origin(annotation) in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
        fields = annotation.model_fields if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    low = next((f"{'above ' if hasattr(m, 'gt') else 'from '}{getattr(m, 'ge', getattr(m, 'gt', None))}"
                for m in metadata if hasattr(m, "ge") or hasattr(m, "gt")), None)
    high = next((f"{'below ' if hasattr(m, 'lt') else 'to '}{getattr(m, 'le', getattr(m, 'lt', None))}"
                 for m in metadata if hasattr(m, "le") or hasattr(m, "lt")), None)
    return " ".join(p for p in (low, high) if p) or None


def _fields_at(loc: tuple, model_fields: dict) -> list[str]:
    fields = model_fields
    for part in loc:
        info = fields.get(part) if isinstance(part, str) else None
        annotation = getattr(info, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
        else:
            return sorted(fields)
    return sorted(fields)


def config_refusal(exc: ValidationError, source: str, model: type[BaseModel], required: dict[str, str]) -> UserError:
    """The UserError of a refused config: one line per mistake, each once, prefixed with `source`."""
    lines = [line for error in exc.errors() for line in describe(error, model.model_fields, required)]
    return UserError("\n".join(one_line(f"{source}: {line}") for line in dict.fromkeys(lines)))
