"""One column's values, whatever held them, as what a drift statistic needs: floats or category counts.

A column comes from a pyarrow reader (an ``Array`` or ``ChunkedArray``), from the in-memory API (a
numpy array, a list) or from the JSON fallback (an object array). Numbers are converted by numpy or
pyarrow compute, never value by value, except for the rare chunk that mixes types. Categories are
counted first and canonicalized per distinct value, so the same category reads the same from CSV
text (``"1"``, ``"1.0"``), JSON numbers (``1``, ``1.0``) and Parquet integers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Text read as a missing value rather than as a bad number or a category (compared lower-cased).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: The same tokens as pyarrow's CSV reader must be told them: it compares case-sensitively.
NULL_VALUES = sorted({v for t in MISSING_TOKENS for v in (t, t.upper(), t.capitalize())} | {"NaN"})

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: ``007`` stays text: a leading zero says it is a code (a zip code, an id), not a number.
_CODE = re.compile(r"[-+]?0\d")
# Integers beyond 2**53 are not exact as floats; taking them through float keeps "1e20" == 10**20.
_EXACT_INT = 2**53


def is_arrow(values: Any) -> bool:
    """A pyarrow array, told apart without importing pyarrow (DAG parsing never loads it)."""
    return type(values).__module__.startswith("pyarrow")


def to_floats(values: Any) -> tuple[NDArray[np.float64], int, str | None]:
    """Floats of a numeric column; a missing value is NaN.

    :return: ``(floats, n_invalid, example)``: a value that is neither a number nor missing
        (``"abc"``) is NaN in ``floats`` and counted in ``n_invalid``, with the first one as
        ``example``. Infinities are left in; the caller counts them as invalid after sorting.
    """
    if is_arrow(values):
        return _arrow_floats(values)
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64, copy=False), 0, None
    try:
        return array.astype(np.float64), 0, None
    except (ValueError, TypeError):
        return _python_floats(array.ravel().tolist())


def _python_floats(items: list[Any]) -> tuple[NDArray[np.float64], int, str | None]:
    """Value by value: only for a chunk numpy cannot convert at once (``""``, ``"NA"``, mixed types)."""
    out = np.empty(len(items), dtype=np.float64)
    invalid, example = 0, None
    for i, value in enumerate(items):
        number = _one_float(value)
        if number is None:
            invalid += 1
            example = example if example is not None else str(value)[:40]
            number = math.nan
        out[i] = number
    return out, invalid, example


def _one_float(value: Any) -> float | None:
    """NaN when missing, ``None`` when not a number."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    text = str(value).strip()
    if text.lower() in MISSING_TOKENS:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _arrow_floats(values: Any) -> tuple[NDArray[np.float64], int, str | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.dictionary_decode(), values.type.value_type
    if pa.types.is_null(kind):
        return np.full(len(values), np.nan), 0, None
    if pa.types.is_float64(kind):
        return values.to_numpy(zero_copy_only=False), 0, None
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return values.cast(pa.float64()).to_numpy(zero_copy_only=False), 0, None
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return _python_floats(values.to_pylist())
    try:
        return values.cast(pa.float64()).to_numpy(zero_copy_only=False), 0, None
    except pa.ArrowInvalid:
        pass
    # Some value is not a number: tell the missing tokens from the bad values, still column-wise.
    text = pc.utf8_trim_whitespace(values)
    number = pc.fill_null(
        pc.match_substring_regex(text, f"^(?:{_NUMBER.pattern}|[-+]?(?:inf|infinity))$"), False
    )
    missing = pc.or_(
        pc.is_null(text), pc.is_in(pc.utf8_lower(text), value_set=pa.array(sorted(MISSING_TOKENS)))
    )
    floats = pc.if_else(number, text, pa.scalar(None, pa.string())).cast(pa.float64())
    bad = pc.and_not(pc.invert(number), pc.fill_null(missing, True))
    n_invalid = int(pc.sum(bad).as_py() or 0)
    example = None
    if n_invalid:
        example = str(pc.filter(values, bad)[0].as_py())[:40]
    return floats.to_numpy(zero_copy_only=False), n_invalid, example


def is_bool(values: Any) -> bool:
    """A boolean column, which is a category whatever the values parse as."""
    if is_arrow(values):
        import pyarrow as pa

        return bool(pa.types.is_boolean(values.type))
    return np.asarray(values).dtype.kind == "b"


def canonical_category(value: Any) -> str | None:
    """The category a value stands for, the same from every format; ``None`` when it is missing.

    Integral numbers read as their integer (``1``, ``1.0``, ``"1.0"`` and ``"1"`` are ``"1"``),
    other numbers as their shortest repr, ``true``/``false`` in any case as ``True``/``False``,
    text stripped. Text with a leading zero (``"007"``) is a code and stays as it is.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        number = int(value)
        return str(number) if abs(number) < _EXACT_INT else canonical_category(float(number))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() and abs(f) < _EXACT_INT else repr(f)
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.strip()
    lower = text.lower()
    if lower in MISSING_TOKENS:
        return None
    if _NUMBER.fullmatch(text) and not _CODE.match(text):
        return canonical_category(float(text))
    if lower in ("true", "false"):
        return "True" if lower == "true" else "False"
    return text


def category_counts(values: Any) -> tuple[dict[str, int], int]:
    """Counts per canonical category, and the number of missing values.

    The distinct values are counted by pyarrow or numpy first; only they pass through Python.
    """
    counts: dict[str, int] = {}
    missing = 0
    for value, count in _distinct(values):
        category = canonical_category(value)
        if category is None:
            missing += count
        else:
            counts[category] = counts.get(category, 0) + count
    return counts, missing


def _distinct(values: Any) -> list[tuple[Any, int]]:
    if is_arrow(values):
        import pyarrow as pa

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_dictionary(values.type):
            indices = values.indices.to_numpy(zero_copy_only=False)
            valid = indices[~np.asarray(values.is_null())] if values.null_count else indices
            per = np.bincount(valid.astype(np.intp), minlength=len(values.dictionary))
            pairs = list(zip(values.dictionary.to_pylist(), per.tolist(), strict=True))
            return [*pairs, (None, values.null_count)]
        table = values.value_counts()
        return list(zip(table.field("values").to_pylist(), table.field("counts").to_pylist(), strict=True))
    array = np.asarray(values)
    if array.dtype.kind in "USfiub":
        uniques, per = np.unique(array.ravel(), return_counts=True)
        return list(zip(uniques.tolist(), per.tolist(), strict=True))
    return list(
        Counter(
            v if v is None or isinstance(v, (str, int, float)) else str(v) for v in array.ravel().tolist()
        ).items()
    )
