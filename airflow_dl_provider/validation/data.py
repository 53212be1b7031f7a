"""Data validation with Great Expectations 1.x: load a suite, read a data set, validate, summarise.

No Airflow here. Great Expectations, pandas and pyarrow are imported inside the functions that use
them, so importing this module (as the operator's module does at DAG parse time) stays cheap.

Every error a user can fix is a one-line :class:`~airflow_dl_provider.exceptions.DataValidationError`
that names the expectation, the key or the object, and the fix; a *failed* validation is not an
error here: :func:`validate` returns its outcome and the caller decides.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_dl_provider.exceptions import DataValidationError

FORMATS = ("csv", "parquet", "jsonl", "manifest")
DEFAULT_MAX_FAILING = 5
#: Keys of one expectation in a suite that are not its arguments (GX 1.x and 0.x spellings).
_ENTRY_KEYS = (
    "type",
    "expectation_type",
    "kwargs",
    "meta",
    "id",
    "notes",
    "rendered_content",
    "severity",
    "description",
)
#: In the summary, long argument lists (a value set of 1,000 classes) are cut to this many items.
_MAX_LIST_ITEMS = 10


# --------------------------------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    """``ExpectColumnValuesToNotBeNull`` -> ``expect_column_values_to_not_be_null`` (GX's class names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if name[:1].isupper() else name


def _entries(source: Any, where: str) -> list[Any]:
    """The list of expectation entries in a suite (JSON text, bytes, a dict) or a plain list."""
    if isinstance(source, (bytes, bytearray)):
        source = source.decode("utf-8", errors="replace")
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except ValueError as err:
            raise DataValidationError(
                f"{where}: is not JSON ({err.__class__.__name__}: {str(err).splitlines()[0]})"
            ) from None
    if isinstance(source, Mapping):
        if "expectations" not in source:
            raise DataValidationError(
                f"{where}: a suite needs an 'expectations' list (keys here: {', '.join(map(str, source)) or 'none'})"
            )
        source = source["expectations"]
    if not isinstance(source, Sequence) or isinstance(source, str):
        raise DataValidationError(f"{where}: must be a list of expectations, not a {type(source).__name__}")
    return list(source)


def _normalise(entry: Any, where: str) -> dict[str, Any]:
    """One entry as ``{"type", "kwargs", "meta"}``; arguments may also sit beside ``type``."""
    if not isinstance(entry, Mapping):
        raise DataValidationError(f"{where}: must be a mapping with a 'type', not a {type(entry).__name__}")
    kind = entry.get("type", entry.get("expectation_type"))
    if not isinstance(kind, str) or not kind:
        raise DataValidationError(f"{where}: needs 'type', e.g. 'expect_column_values_to_not_be_null'")
    kwargs = entry.get("kwargs")
    if kwargs is None:
        kwargs = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}
    if not isinstance(kwargs, Mapping):
        raise DataValidationError(f"{where}.kwargs: must be a mapping, not a {type(kwargs).__name__}")
    meta = entry.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise DataValidationError(f"{where}.meta: must be a mapping, not a {type(meta).__name__}")
    return {"type": _snake(kind), "kwargs": dict(kwargs), "meta": dict(meta)}


def _pydantic_message(err: Any) -> str:
    """The first useful line of a pydantic (v1, as GX uses) validation error: ``key: problem``."""
    errors = err.errors() if hasattr(err, "errors") else []
    # A union field fails once per alternative ("not a valid float", "not a valid dict", ...): the
    # first line per key is the one that speaks to the common case.
    seen: dict[str, str] = {}
    for item in errors:
        key = ".".join(str(p) for p in item.get("loc", ()) if p != "__root__") or "arguments"
        seen.setdefault(key, str(item.get("msg", "")))
    if len(seen) > 1:
        # A whole-model check ("min_value and max_value cannot both be None") often only echoes a
        # field that already failed; the field's own message is the one to fix.
        seen.pop("arguments", None)
    if not seen:
        return str(err).splitlines()[0]
    return "; ".join(f"{key}: {msg}" for key, msg in list(seen.items())[:3])


# GX's public-API registry logs "Skipping registering function ..." at INFO for some 200 of its own
# functions while its modules import: noise that buries the task's own lines. Quietened here, on the
# way into GX, not at this module's import, so nothing changes for a process that never validates.
_GX_NOISY_LOGGERS = ("great_expectations._docs_decorators",)


def _quiet_great_expectations() -> None:
    for name in _GX_NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _build(expectation: Mapping[str, Any], where: str) -> Any:
    """A GX expectation object from one normalised entry; GX's errors become one line."""
    _quiet_great_expectations()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    kind = expectation["type"]
    try:
        config = ExpectationConfiguration(type=kind, kwargs=expectation["kwargs"], meta=expectation["meta"])
        return config.to_domain_obj()
    except ExpectationNotFoundError:
        import difflib

        from great_expectations.expectations.registry import list_registered_expectation_implementations

        close = difflib.get_close_matches(kind, list_registered_expectation_implementations(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see the Expectation Gallery for the names"
        raise DataValidationError(f"{where}.type: unknown expectation {kind!r}{hint}") from None
    except ValueError as err:  # pydantic's ValidationError subclasses ValueError
        raise DataValidationError(f"{where} ({kind}): {_pydantic_message(err)}") from None
    except Exception as err:  # GX's own configuration errors
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataValidationError(f"{where} ({kind}): {message}") from None


def parse_expectations(source: Any, *, where: str = "expectations") -> list[dict[str, Any]]:
    """The shape check of :func:`load_expectations` alone, without importing Great Expectations.

    Cheap enough for an operator's constructor (DAG parse time): a suite or list whose entries
    each have a ``type``; whether GX knows the type and its arguments is :func:`load_expectations`'.
    """
    entries = _entries(source, where)
    if not entries:
        raise DataValidationError(f"{where}: holds no expectations")
    return [_normalise(entry, f"{where}[{i}]") for i, entry in enumerate(entries)]


def load_expectations(source: Any, *, where: str = "expectations") -> list[dict[str, Any]]:
    """Check a suite and return its expectations as plain ``{"type", "kwargs", "meta"}`` dicts.

    Each expectation is built with Great Expectations, so an unknown type, a missing ``column`` or
    an argument of the wrong type fails here, before any data is read, as one line naming the
    expectation's index and the key, e.g. ``expectations[2] (expect_column_values_to_be_between):
    min_value: value is not a valid float``.

    :param source: a GX suite (JSON text or bytes, or its dict: ``{"name", "expectations": [...]}``;
        entries use GX 1.x ``type`` or 0.x ``expectation_type``), or a list of entries. An entry's
        arguments sit in ``kwargs`` or beside ``type``; ``type`` may be the class name
        (``ExpectColumnValuesToNotBeNull``).
    :param where: names the source in errors (``suite_uri s3://...``).
    :return: the normalised expectations, JSON-safe, in suite order.
    """
    normalised = parse_expectations(source, where=where)
    for i, expectation in enumerate(normalised):
        _build(expectation, f"{where}[{i}]")
    return normalised


def label_manifest_suite(
    label_attribute: str,
    classes: Sequence[str | int] | None = None,
    min_confidence: float | None = None,
    min_class_fraction: float | None = None,
    max_class_fraction: float | None = None,
    confidence_mostly: float = 1.0,
) -> list[dict[str, Any]]:
    """The built-in suite for a Ground Truth output manifest read with ``data_format="manifest"``.

    Every check is a stock GX expectation on the columns :func:`read_frame` makes:

    * no missing labels: ``expect_column_values_to_not_be_null`` on ``<label_attribute>``;
    * labels in ``classes``: ``expect_column_values_to_be_in_set`` on ``<label_attribute>-class-name``
      (class names) or ``<label_attribute>`` (integer class ids);
    * minimum confidence: ``expect_column_values_to_be_between`` on ``<label_attribute>-confidence``,
      for at least ``confidence_mostly`` of the rows;
    * class balance, per class ``c`` of ``classes``: its share of the labelled rows is at least
      ``min_class_fraction`` (``expect_column_values_to_be_in_set([c], mostly=min_class_fraction)``)
      and at most ``max_class_fraction`` (``expect_column_values_to_not_be_in_set([c],
      mostly=1 - max_class_fraction)``). GX's ``mostly`` counts non-null rows, so the shares are of
      the labelled rows; missing labels are the first check's business. Each carries
      ``meta={"check": "class_balance", "class": c}``.

    :return: expectations in :func:`load_expectations`' shape.
    """
    if not label_attribute:
        raise DataValidationError(
            "label_manifest_checks.label_attribute: required (the labeling job's LabelAttributeName)"
        )
    for key, value in (
        ("min_confidence", min_confidence),
        ("min_class_fraction", min_class_fraction),
        ("max_class_fraction", max_class_fraction),
        ("confidence_mostly", confidence_mostly),
    ):
        if value is not None and not 0.0 <= float(value) <= 1.0:
            raise DataValidationError(f"label_manifest_checks.{key}: must be between 0 and 1, got {value}")
    # 0 and 1 are no bounds at all (a pipeline config's defaults), so they need no classes.
    balance = bool(min_class_fraction) or (max_class_fraction is not None and max_class_fraction < 1.0)
    if balance and not classes:
        raise DataValidationError("label_manifest_checks.classes: required for class balance bounds")
    if min_class_fraction and max_class_fraction and min_class_fraction > max_class_fraction:
        raise DataValidationError(
            f"label_manifest_checks: min_class_fraction {min_class_fraction} > max_class_fraction {max_class_fraction}"
        )
    classes = list(classes or [])
    by_name = any(isinstance(c, str) for c in classes)
    label_column = f"{label_attribute}-class-name" if by_name else label_attribute
    suite: list[dict[str, Any]] = [
        _entry("expect_column_values_to_not_be_null", {"column": label_attribute}, check="missing_labels")
    ]
    if classes:
        suite.append(
            _entry(
                "expect_column_values_to_be_in_set",
                {"column": label_column, "value_set": classes},
                check="label_set",
            )
        )
    if min_confidence is not None:
        suite.append(
            _entry(
                "expect_column_values_to_be_between",
                {
                    "column": f"{label_attribute}-confidence",
                    "min_value": float(min_confidence),
                    "mostly": confidence_mostly,
                },
                check="min_confidence",
            )
        )
    for name in classes:
        if min_class_fraction:
            suite.append(
                _entry(
                    "expect_column_values_to_be_in_set",
                    {"column": label_column, "value_set": [name], "mostly": float(min_class_fraction)},
                    check="class_balance",
                    cls=name,
                )
            )
        if max_class_fraction is not None and max_class_fraction < 1.0:
            suite.append(
                _entry(
                    "expect_column_values_to_not_be_in_set",
                    {
                        "column": label_column,
                        "value_set": [name],
                        "mostly": round(1.0 - float(max_class_fraction), 12),
                    },
                    check="class_balance",
                    cls=name,
                )
            )
    return suite


def _entry(kind: str, kwargs: dict[str, Any], *, check: str, cls: Any = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"check": check}
    if cls is not None:
        meta["class"] = cls
    return {"type": kind, "kwargs": kwargs, "meta": meta}


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def guess_format(name: str) -> str:
    """``csv``, ``parquet``, ``jsonl`` or ``manifest`` from an object's name; else a one-line error."""
    lower = name.lower().removesuffix(".gz")
    for suffixes, data_format in (
        ((".csv", ".tsv", ".txt"), "csv"),
        ((".parquet", ".pq"), "parquet"),
        ((".jsonl", ".json", ".ndjson"), "jsonl"),
        ((".manifest",), "manifest"),
    ):
        if lower.endswith(suffixes):
            return data_format
    raise DataValidationError(
        f"data_format: cannot tell the format of {name} by its name; set data_format to one of {', '.join(FORMATS)}"
    )


def _text(data: bytes, name: str) -> str:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataValidationError(
            f"data: {name} is not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None


def _json_lines(data: bytes, name: str) -> list[dict[str, Any]]:
    records = []
    for line_no, line in enumerate(_text(data, name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise DataValidationError(
                f"data: {name} line {line_no} is not JSON ({getattr(err, 'msg', err)})"
            ) from None
        if not isinstance(record, dict):
            raise DataValidationError(
                f"data: {name} line {line_no} is a JSON {type(record).__name__}, not an object"
            )
        records.append(record)
    return records


def _min_confidence(metadata: Mapping[str, Any]) -> float | None:
    """A labelled item's confidence: ``confidence``, else the lowest of its objects' or classes'."""
    if isinstance(metadata.get("confidence"), (int, float)):
        return float(metadata["confidence"])
    values = [o.get("confidence") for o in metadata.get("objects") or [] if isinstance(o, Mapping)]
    values += list((metadata.get("confidence-map") or {}).values())
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    return min(numbers) if numbers else None


def flatten_manifest_record(record: Mapping[str, Any], label_attributes: Sequence[str]) -> dict[str, Any]:
    """One line of a Ground Truth output manifest as flat columns.

    ``source-ref`` (or ``source``) and other scalar keys are kept; for each label attribute ``a``:
    ``a`` (the label; a structured one, like bounding boxes, as JSON text), ``a-class-name``
    (the metadata's ``class-name``, else a scalar label as text), ``a-confidence`` (the item's, or
    the lowest of its objects'), ``a-human-annotated`` (``True`` for ``"yes"``), ``a-job-name``,
    ``a-failure-reason``. A missing label is ``None`` in each.
    """
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key.endswith("-metadata") or key in label_attributes:
            continue
        row[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
    for attribute in label_attributes:
        label = record.get(attribute)
        metadata = record.get(f"{attribute}-metadata") or {}
        if not isinstance(metadata, Mapping):
            metadata = {}
        structured = isinstance(label, (dict, list))
        row[attribute] = json.dumps(label, sort_keys=True) if structured else label
        class_name = metadata.get("class-name")
        if class_name is None and label is not None and not structured:
            class_name = str(label)
        row[f"{attribute}-class-name"] = class_name
        row[f"{attribute}-confidence"] = _min_confidence(metadata)
        annotated = metadata.get("human-annotated")
        row[f"{attribute}-human-annotated"] = None if annotated is None else str(annotated).lower() == "yes"
        row[f"{attribute}-job-name"] = metadata.get("job-name")
        row[f"{attribute}-failure-reason"] = metadata.get("failure-reason")
    return row


def _manifest_frame(data: bytes, name: str, label_attributes: Sequence[str] | None) -> Any:
    import pandas as pd

    records = _json_lines(data, name)
    attributes = list(label_attributes or [])
    if not attributes:
        # Every key with a "-metadata" sibling is a label attribute (chained jobs add more than one).
        attributes = list(
            dict.fromkeys(k[: -len("-metadata")] for r in records for k in r if k.endswith("-metadata"))
        )
    rows = [flatten_manifest_record(r, attributes) for r in records]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pd.DataFrame.from_records(rows, columns=columns)


def read_frame(
    data: bytes,
    data_format: str,
    *,
    name: str = "data",
    label_attributes: Sequence[str] | None = None,
) -> Any:
    """One object's bytes as a pandas DataFrame.

    :param data: the object's content (``.gz`` names are gunzipped for CSV, JSON Lines, manifests).
    :param data_format: ``csv`` (header row), ``parquet`` (needs pyarrow), ``jsonl`` (one object
        per line; a key a line lacks is a missing value) or ``manifest`` (a Ground Truth output
        manifest, flattened by :func:`flatten_manifest_record`).
    :param name: the object's name, for errors and compression.
    :param label_attributes: for manifests, the label attributes to flatten (default: each key with
        a ``-metadata`` sibling); named ones become columns even when no line has them.
    :return: a ``pandas.DataFrame``.
    """
    import pandas as pd

    if data_format not in FORMATS:
        raise DataValidationError(f"data_format: {data_format!r} is not one of {', '.join(FORMATS)}")
    if data_format == "parquet":
        return _parquet_frame(data, name)
    if data_format == "manifest":
        return _manifest_frame(data, name, label_attributes)
    if data_format == "jsonl":
        records = _json_lines(data, name)
        return pd.DataFrame.from_records(records, columns=list(dict.fromkeys(k for r in records for k in r)))
    try:
        return pd.read_csv(
            io.BytesIO(data),
            compression="gzip" if name.endswith(".gz") else None,
            sep="\t" if name.removesuffix(".gz").endswith(".tsv") else ",",
        )
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"data: {name} is empty; is the upstream task done?") from None
    except (ValueError, OSError, UnicodeDecodeError) as err:  # ParserError subclasses ValueError
        raise DataValidationError(
            f"data: {name} cannot be read as CSV ({str(err).splitlines()[0]})"
        ) from None


def _parquet_frame(data: bytes, name: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataValidationError(
            f"data: {name} is Parquet, which needs pyarrow: pip install pyarrow"
        ) from None
    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid and ArrowIOError subclass these
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        # pyarrow names our in-memory buffer ('<Buffer>'); the object's name is already in the line.
        first = re.sub(r"^Could not open Parquet input source '[^']*': ", "", first)
        raise DataValidationError(
            f"data: {name} cannot be read as Parquet ({first}); check that it is a complete Parquet file, "
            "or set data_format to what it is"
        ) from None


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """NaN and infinities as ``None``, numpy scalars as Python ones, tuples as lists: strict JSON."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _short(value: Any) -> Any:
    if isinstance(value, list) and len(value) > _MAX_LIST_ITEMS:
        return [*value[:_MAX_LIST_ITEMS], f"... {len(value) - _MAX_LIST_ITEMS} more"]
    return value


def _exception_message(info: Any) -> str | None:
    """GX reports an expectation that raised (a missing column) in one of two shapes."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message") or "raised an exception")
    return None


def _observed(result: Any) -> dict[str, Any]:
    """What made one expectation fail, small: its observed value or its unexpected counts."""
    error = _exception_message(result.exception_info)
    if error:
        return {"error": error.removeprefix("Error: ")}
    details = result.result or {}
    observed: dict[str, Any] = {}
    for key in ("observed_value", "element_count", "unexpected_count", "unexpected_percent", "missing_count"):
        if key in details:
            observed[key] = details[key]
    if details.get("partial_unexpected_list"):
        observed["unexpected_examples"] = details["partial_unexpected_list"][:5]
    return observed


@dataclass
class ValidationOutcome:
    """The result of :func:`validate`: the JSON-safe summary and GX's own result object."""

    summary: dict[str, Any]
    result: Any

    @property
    def success(self) -> bool:
        return bool(self.summary["success"])

    def result_json(self) -> str:
        """GX's full validation result (``ExpectationSuiteValidationResult.to_json_dict()``) as JSON."""
        return json.dumps(json_safe(self.result.to_json_dict()), indent=1)

    def data_docs_html(self) -> str:
        """The Data Docs page of this validation, rendered by GX's own Data Docs renderer and view.

        One standalone page: styled inline, nothing loaded from a CDN, so it opens offline
        (:func:`~airflow_dl_provider.validation.data_docs.standalone_page`).
        """
        _quiet_great_expectations()
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        from airflow_dl_provider.validation.data_docs import standalone_page

        page = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(self.result))
        return standalone_page(str(page))

    def describe(self) -> str:
        """One line for a log or an error: the counts and the first failing expectations."""
        s = self.summary
        line = (
            f"{s['successful']} of {s['evaluated']} expectations passed ({s['success_percent']:.1f}%) "
            f"on {s['rows']} rows"
        )
        if s["failing"]:
            parts = []
            for item in s["failing"]:
                column = item["kwargs"].get("column")
                where = f"({column})" if column is not None else ""
                observed = item["observed"]
                if "error" in observed:
                    detail = observed["error"]
                elif "unexpected_count" in observed:
                    detail = f"{observed['unexpected_count']} unexpected ({observed.get('unexpected_percent') or 0:.2f}%)"
                else:
                    detail = f"observed {observed.get('observed_value')!r}"
                parts.append(
                    f"#{item['index']} {item['expectation_type']}{where}: {detail}".replace("\n", " ")
                )
            more = s["failed"] - len(s["failing"])
            line += "; failing: " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
        return line


def _key(kind: str, kwargs: Mapping[str, Any]) -> str:
    return json.dumps([kind, json_safe({k: v for k, v in kwargs.items() if k != "batch_id"})], sort_keys=True)


def validate(
    frame: Any,
    expectations: Sequence[Mapping[str, Any]],
    *,
    max_failing: int = DEFAULT_MAX_FAILING,
    suite_name: str = "airflow_dl_provider",
) -> ValidationOutcome:
    """Validate a DataFrame against expectations with an ephemeral GX context (nothing on disk).

    :param frame: a ``pandas.DataFrame``.
    :param expectations: as :func:`load_expectations` returns them (checked again here).
    :param max_failing: how many failing expectations the summary lists, in suite order.
    :return: a :class:`ValidationOutcome` whose ``summary`` is ``{"success", "evaluated",
        "successful", "failed", "success_percent", "rows", "failing": [{"index",
        "expectation_type", "column", "kwargs", "meta", "observed"}]}``.
    """
    _quiet_great_expectations()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    built = [_build(e, f"expectations[{i}]") for i, e in enumerate(expectations)]
    # GX normalises arguments (2 -> 2.0); its results are matched to the suite by its own form.
    normalised = [{"type": b.configuration.type, "kwargs": b.configuration.kwargs} for b in built]
    context = gx.get_context(mode="ephemeral")
    # tqdm bars would fill the task log with carriage returns.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(name="airflow_dl_provider")
        .add_dataframe_asset(name="data")
        .add_batch_definition_whole_dataframe(name="whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=suite_name)
    for expectation in built:
        suite.add_expectation(expectation)
    result = batch.validate(suite)
    return ValidationOutcome(summarize(result, normalised, rows=len(frame), max_failing=max_failing), result)


def summarize(
    result: Any,
    expectations: Sequence[Mapping[str, Any]],
    *,
    rows: int,
    max_failing: int = DEFAULT_MAX_FAILING,
) -> dict[str, Any]:
    """The JSON-safe summary of a GX suite validation result (see :func:`validate`).

    :param expectations: the suite's expectations as GX normalised them (``type``, ``kwargs``), in
        suite order: failing ones are numbered by their index here.
    """
    # GX returns results grouped by domain, not in suite order; the user's numbering is the suite's.
    order: dict[str, list[int]] = {}
    for i, e in enumerate(expectations):
        order.setdefault(_key(e["type"], e["kwargs"]), []).append(i)
    failing = []
    for position, item in enumerate(result.results):
        if item.success:
            continue
        config = item.expectation_config
        indices = order.get(_key(config.type, config.kwargs)) or [len(expectations) + position]
        index = indices.pop(0) if len(indices) > 1 else indices[0]
        kwargs = {k: _short(v) for k, v in config.kwargs.items() if k != "batch_id"}
        failing.append(
            {
                "index": index,
                "expectation_type": config.type,
                "column": kwargs.get("column"),
                "kwargs": kwargs,
                "meta": dict(config.meta or {}),
                "observed": _observed(item),
            }
        )
    failing.sort(key=lambda f: f["index"])
    stats = result.statistics
    return json_safe(
        {
            "success": bool(result.success),
            "evaluated": int(stats["evaluated_expectations"]),
            "successful": int(stats["successful_expectations"]),
            "failed": int(stats["unsuccessful_expectations"]),
            "success_percent": float(stats["success_percent"] or 0.0),
            "rows": int(rows),
            "failing": failing[: max(0, max_failing)],
        }
    )
