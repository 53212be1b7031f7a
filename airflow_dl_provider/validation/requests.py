"""Validate SageMaker requests and responses against the botocore service model.

botocore's own ``ParamValidator`` checks types, required members, unknown keys and minimums, but not
enums, maximums or patterns, so a request such as ``InstanceType="ml.bogus.xlarge"`` or a job name
with an underscore only fails once it reaches AWS. This module adds those checks and reports every
problem as one line: ``Operation.Path[0].Field: value, what is wrong, and what is allowed``.

Patterns are matched against the whole value: the service rejects ``bad_name`` for
``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``, and the model spells "any text" as ``[\\S\\s]*`` where ``.*`` would
stop at a newline, which only makes sense under full-match semantics.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import logging
import re
import sys
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore import xform_name
from botocore.exceptions import UnknownServiceError
from botocore.validate import ParamValidator

from airflow_dl_provider.exceptions import RequestValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.model import OperationModel, ServiceModel, Shape

__all__ = ["request_errors", "response_errors", "validate_request", "validate_response"]

log = logging.getLogger(__name__)

_SHOWN_CHARS = 60
_SHOWN_CHOICES = 10
_JAVA_POSIX = {"Alnum": "a-zA-Z0-9", "Alpha": "a-zA-Z", "Digit": "0-9", "Upper": "A-Z", "Lower": "a-z"}
# \p{..} property, a Java surrogate pair (Python wants one \U escape), `$` under a quantifier (Python
# refuses to repeat an anchor), any other escape (so `\[` never opens a class), class brackets.
_JAVA_TOKEN = re.compile(
    r"\\([pP])\{(\w+)\}|\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})|(\$\{[1-9]\d*,\d*\})|\\.|\[|\]",
    re.IGNORECASE,
)
_NUMBERS = ("integer", "long", "float", "double")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("integer", "long"), (int,)),
    **dict.fromkeys(("float", "double"), (int, float)),
    **dict.fromkeys(("map", "structure"), (Mapping,)),
    **{"string": (str,), "boolean": (bool,), "list": (list, tuple), "blob": (bytes, bytearray, str)},
    "timestamp": (datetime.date, str, int, float),  # botocore also accepts ISO strings and epoch numbers
}


@functools.cache
def _service_model(service: str) -> ServiceModel:
    try:
        return botocore.session.get_session().get_service_model(service)
    except UnknownServiceError as exc:
        raise RequestValidationError(f"botocore has no service model named {service!r}") from exc


@functools.cache
def _operation_index(service: str) -> dict[str, str]:
    names = _service_model(service).operation_names
    return {**{xform_name(name): name for name in names}, **{name: name for name in names}}


def _operation(operation: str, service: str) -> OperationModel:
    index = _operation_index(service)
    if operation not in index:
        close = difflib.get_close_matches(operation, list(index), n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise RequestValidationError(f"{service} has no operation {operation!r}{hint}")
    return _service_model(service).operation_model(index[operation])


@functools.cache
def _unicode_categories() -> dict[str, list[tuple[int, int]]]:
    """Code point ranges per Unicode general category (one pass, ~0.2 s, only if a pattern needs it)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\0")
    for code in range(1, sys.maxunicode + 2):
        category = unicodedata.category(chr(code)) if code <= sys.maxunicode else ""
        if category != current:
            ranges.setdefault(current, []).append((start, code - 1))
            start, current = code, category
    return ranges


def _class_body(name: str) -> str:
    """Translate a Java ``\\p{name}`` to the inside of a Python character class, or raise ``re.error``."""
    if name in _JAVA_POSIX:
        return _JAVA_POSIX[name]
    # Only general categories (L, Lu, N, Zs, ...); scripts and Java's own properties have no cheap equivalent.
    if len(name) <= 2 and (
        spans := [s for c, f in _unicode_categories().items() if c.startswith(name) for s in f]
    ):
        return "".join(f"\\U{lo:08X}" if lo == hi else f"\\U{lo:08X}-\\U{hi:08X}" for lo, hi in spans)
    raise re.error(f"unsupported property \\p{{{name}}}")


def _translate(pattern: str) -> str:
    """Rewrite the Java-only regex syntax found in AWS models into Python ``re`` syntax."""
    out, pos, in_class = [], 0, False
    for match in _JAVA_TOKEN.finditer(pattern):
        out.append(pattern[pos : match.start()])
        pos = match.end()
        negated, prop, high, low, repeated_end = match.groups()
        token = match.group(0)
        if prop:
            if negated == "P":
                raise re.error(f"unsupported negated property {token}")
            body = _class_body(prop)
            token = body if in_class else f"[{body}]"
        elif high:
            token = f"\\U{0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00:08X}"
        elif repeated_end:
            token = "$"
        elif token in ("[", "]"):
            in_class = token == "["
        out.append(token)
    return "".join(out) + pattern[pos:]


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """Compile a model pattern once; ``None`` when no Python equivalent exists (the check is skipped)."""
    try:
        return re.compile(pattern)
    except re.error:
        pass
    try:
        return re.compile(_translate(pattern))
    except re.error as exc:
        log.debug("Skipping model pattern %r that Python cannot compile: %s", pattern, exc)
        return None


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) <= _SHOWN_CHARS:
        return text
    return text[: _SHOWN_CHARS - 2] + "…" + (text[-1] if isinstance(value, str) else "")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _choices(value: str, allowed: list[str], noun: str) -> str:
    """``allowed: a, b`` for short lists; closest matches first, then a truncated sorted list, for long ones."""
    if len(allowed) <= _SHOWN_CHOICES:
        return f"allowed: {', '.join(allowed)}"
    close = difflib.get_close_matches(value, allowed, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    shown = ", ".join(sorted(allowed)[:_SHOWN_CHOICES])
    return f"{hint}allowed: {shown}, ... ({len(allowed)} {noun})"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Report:
    """The lines found so far for one operation; ``response`` turns on the checks botocore does for requests."""

    def __init__(self, operation: str, *, response: bool) -> None:
        self.operation = operation
        self.response = response
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{self.operation}.{path}: {message}" if path else f"{self.operation}: {message}")


def _walk(shape: Shape, value: Any, path: str, report: _Report) -> None:
    if getattr(shape, "is_document_type", False):
        return
    kind = shape.type_name
    if not isinstance(value, _PY_TYPES[kind]) or (kind in _NUMBERS and isinstance(value, bool)):
        # For requests ParamValidator has already reported the wrong type; say it once.
        if report.response and not (kind == "blob" and hasattr(value, "read")):
            expected = " or ".join(t.__name__ for t in _PY_TYPES[kind])
            report.add(path, f"{_show(value)} is {type(value).__name__}; expected {expected}")
        return
    check = _CHECKS.get(kind)
    if check is not None:
        check(shape, value, path, report)


def _size(shape: Shape, size: int, path: str, report: _Report, subject: str, noun: str) -> bool:
    """Report a length or count outside ``min``/``max``; return whether it was inside."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        report.add(path, f"{subject} {_count(size, noun)}; the minimum is {low}")
    elif high is not None and size > high:
        report.add(path, f"{subject} {_count(size, noun)}; the maximum is {high}")
    else:
        return True
    return False


def _check_string(shape: Shape, value: str, path: str, report: _Report) -> None:
    allowed = shape.enum
    if allowed and value not in allowed:
        # An enum makes length and pattern redundant, and one line per problem reads better.
        report.add(path, f"{_show(value)} is not a valid value; {_choices(value, allowed, 'values')}")
        return
    if not _size(shape, len(value), path, report, f"{_show(value)} is", "character"):
        return  # patterns often repeat the length limit ({0,62}); one line for one problem
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        report.add(path, f"{_show(value)} does not fully match the pattern {pattern}")


def _check_number(shape: Shape, value: float, path: str, report: _Report) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        report.add(path, f"{value!r} is below the minimum {low}")
    elif high is not None and value > high:
        report.add(path, f"{value!r} is above the maximum {high}")


def _check_blob(shape: Shape, value: bytes | bytearray | str, path: str, report: _Report) -> None:
    _size(shape, len(value), path, report, "is", "byte")


def _check_list(shape: Shape, value: list[Any], path: str, report: _Report) -> None:
    _size(shape, len(value), path, report, "has", "item")
    for index, item in enumerate(value):
        _walk(shape.member, item, f"{path}[{index}]", report)


def _check_map(shape: Shape, value: Mapping[Any, Any], path: str, report: _Report) -> None:
    _size(shape, len(value), path, report, "has", "entry")
    for key, item in value.items():
        # Same path spelling as botocore's own report, so both halves of a request read alike.
        _walk(shape.key, key, f"{path} (key: {key})", report)
        _walk(shape.value, item, f"{path}.{key}", report)


def _check_structure(shape: Shape, value: Mapping[str, Any], path: str, report: _Report) -> None:
    members = shape.members
    if report.response:
        for name in shape.required_members:
            if name not in value:
                report.add(_join(path, name), "is required but missing")
        for name in value:
            if name not in members and (path or name != "ResponseMetadata"):
                report.add(
                    _join(path, name), f"is not a known field; {_choices(name, list(members), 'fields')}"
                )
    for name, item in value.items():
        if name in members:
            _walk(members[name], item, _join(path, name), report)


_CHECKS: dict[str, Callable[[Shape, Any, str, _Report], None]] = {
    "string": _check_string,
    **dict.fromkeys(_NUMBERS, _check_number),
    "blob": _check_blob,
    "list": _check_list,
    "map": _check_map,
    "structure": _check_structure,
}
# The walk reports these with both bounds; botocore only knows the minimum.
_WALK_OWNS = {"invalid range", "invalid length"}


def _botocore_lines(params: Any, shape: Shape, report: _Report) -> None:
    """Run botocore's ``ParamValidator`` and restate each of its findings as one line."""
    found = ParamValidator().validate(params, shape)
    raw = getattr(found, "_errors", None)  # (reason, name, details); private but unchanged since 2015
    if raw is None:
        report.lines.extend(f"{report.operation}: {line}" for line in found.generate_report().splitlines())
        return
    for reason, name, details in raw:
        path = name.lstrip(".")
        if reason in _WALK_OWNS:
            continue
        if reason == "missing required field":
            report.add(_join(path, details["required_name"]), "is required but missing")
        elif reason == "unknown field":
            field, valid = details["unknown_param"], details["valid_names"]
            report.add(_join(path, field), f"is not a known field; {_choices(field, valid, 'fields')}")
        elif reason == "invalid type":
            expected = " or ".join(re.sub(r"<class '([\w.]+)'>", r"\1", t) for t in details["valid_types"])
            value = details["param"]
            report.add(path, f"{_show(value)} is {type(value).__name__}; expected {expected}")
        else:
            extra = ", ".join(f"{key}={_show(val)}" for key, val in details.items() if key != "user_params")
            report.add(path, f"{reason} ({extra})" if extra else reason)


def request_errors(operation: str, params: Mapping[str, Any], *, service: str = "sagemaker") -> list[str]:
    """Return every problem with a request, one line each; empty when the request is valid.

    :param operation: API name (``CreateTrainingJob``) or boto3 method name (``create_training_job``).
    :param params: the keyword arguments the boto3 method would receive.
    :param service: the botocore service name.
    :raises RequestValidationError: when the service or operation does not exist.
    """
    model = _operation(operation, service)
    report = _Report(model.name, response=False)
    if model.input_shape is None:
        if params:
            report.add("", f"takes no parameters; got {', '.join(params)}")
        return report.lines
    _botocore_lines(params, model.input_shape, report)
    _walk(model.input_shape, params, "", report)
    return report.lines


def response_errors(operation: str, response: Mapping[str, Any], *, service: str = "sagemaker") -> list[str]:
    """Return every way a response differs from the operation's output shape, one line each.

    Checks required and unknown members, Python types, enums, lengths, patterns and ranges; a top-level
    ``ResponseMetadata`` is allowed and timestamps may be ``datetime`` objects.

    :param operation: API name or boto3 method name.
    :param response: the dict a boto3 client (real or simulated) returned.
    :param service: the botocore service name.
    :raises RequestValidationError: when the service or operation does not exist.
    """
    model = _operation(operation, service)
    report = _Report(model.name, response=True)
    if model.output_shape is None:
        extra = [key for key in response if key != "ResponseMetadata"]
        if extra:
            report.add("", f"returns no members; got {', '.join(extra)}")
        return report.lines
    _walk(model.output_shape, response, "", report)
    return report.lines


def _raise_for(lines: list[str]) -> None:
    if not lines:
        return
    more = f" (and {len(lines) - 1} more: {'; '.join(lines[1:])})" if len(lines) > 1 else ""
    error = RequestValidationError(lines[0] + more)
    error.errors = list(lines)  # type: ignore[attr-defined]
    raise error


def validate_request(operation: str, params: Mapping[str, Any], *, service: str = "sagemaker") -> None:
    """Raise if a request would be refused by the service model; arguments as :func:`request_errors`.

    :raises RequestValidationError: one line for one problem, else the first line and ``(and N more: ...)``
        on the same line; ``.errors`` holds every line.
    """
    _raise_for(request_errors(operation, params, service=service))


def validate_response(operation: str, response: Mapping[str, Any], *, service: str = "sagemaker") -> None:
    """Raise if a response does not have the real service's shape; arguments as :func:`response_errors`.

    :raises RequestValidationError: as :func:`validate_request`, with ``.errors`` holding every line.
    """
    _raise_for(response_errors(operation, response, service=service))


def output_shape(operation: str, *, service: str = "sagemaker") -> Shape:
    """The operation's output shape, so a simulated client can return exactly the real members."""
    shape = _operation(operation, service).output_shape
    if shape is None:
        raise RequestValidationError(f"{service}.{operation} has no output shape")
    return shape
