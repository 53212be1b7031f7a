"""What every spec shares: which values are still Jinja templates, and one-line field errors.

A spec is checked twice: at construction, where a templated value (``"{{ ... }}"``) is skipped, and
again once Airflow has rendered it (``check(rendered=True)``), when every value is final.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

Row = TypeVar("Row")


def is_templated(value: Any) -> bool:
    """A value Airflow has still to render: a string holding ``{{``, or a container of one."""
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(is_templated(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_templated(v) for v in value)
    return False


def fixed(value: Any, rendered: bool) -> bool:
    """Whether ``value`` can be checked now: always once rendered, else only when it is no template."""
    return rendered or not is_templated(value)


def check_choice(
    where: str, value: Any, allowed: Iterable[Any], *, error: type[ValueError] = ValueError
) -> None:
    """One line naming ``where`` when ``value`` is not one of ``allowed``; ``error`` is its type."""
    choices = tuple(allowed)
    if value not in choices:
        raise error(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")


def as_int(where: str, value: Any, *, minimum: int | None = None) -> int:
    """A rendered whole number (templates render to strings); one line naming ``where`` otherwise."""
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or (isinstance(value, float) and value != number):
        raise ValueError(f"{where} must be a whole number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{where} must be >= {minimum}, got {number}")
    return number


def string_map(value: Mapping[str, Any] | None) -> dict[str, str]:
    """Environment variables and tags: the API takes strings only."""
    return {str(k): str(v) for k, v in (value or {}).items()}


def tag_list(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in string_map(tags).items()]


def keyed(rows: Iterable[Row], key: str = "key") -> dict[str, Row]:
    """A table of rows by their ``key`` attribute, in the order written."""
    return {getattr(row, key): row for row in rows}


def lookup(
    table: Mapping[str, Row], name: Any, where: str, what: str, *, error: type[ValueError] = ValueError
) -> Row:
    """``table[name]``; else one line: ``<where>: <name> is not <what>; use one of <the names>``."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise error(f"{where}: {name!r} is not {what}; use one of {', '.join(table)}") from None
