"""Validate a data set in S3 with Great Expectations before anything trains on it."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.exceptions import DataValidationError
from airflow_dl_provider.links.console import DataDocsLink
from airflow_dl_provider.operators.base import S3Operator
from airflow_dl_provider.validation.data import (
    DEFAULT_MAX_FAILING,
    FORMATS,
    label_manifest_suite,
    parse_expectations,
)
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.validation.data import ValidationOutcome

try:
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2.x
    from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef]

DATA_FORMATS = ("auto", *FORMATS)
RESULT_JSON = "validation_result.json"
DATA_DOCS = "data_docs/index.html"
#: Keys under a prefix that are bookkeeping, not data (Spark/EMR markers, checksums, dotfiles).
_SKIP_NAME = re.compile(r"(^[_.])|(\.crc$)")


class DataValidationOperator(S3Operator):
    """Validate a data set in S3 against Great Expectations expectations.

    The data (one object, or every object under a prefix, concatenated in key order) is read into
    pandas and validated in an ephemeral GX context, so nothing is written but the results. GX's
    full result (``validation_result.json``) and its Data Docs page (``data_docs/index.html``) are
    written under ``<result_prefix>/<run id>/``; the summary goes to the task log and to XCom.
    When an expectation fails, the summary is pushed to XCom (``return_value``) first and then the
    task fails with :class:`~airflow_dl_provider.exceptions.DataValidationError`, or, with
    ``soft_fail``, is skipped, which skips the tasks downstream.

    Expectations come from any of ``expectations``, ``suite_uri``, ``suite_path`` and
    ``label_manifest_checks``, concatenated in that order. Their shape is checked when the DAG is
    parsed; whether Great Expectations knows each type and its arguments is checked when the task
    starts, before the data is read. A bad suite or an unreadable object fails the task (even with
    ``soft_fail``) with one line that names it and the fix.

    :param data_uri: ``s3://`` URI of one object, or of a prefix whose objects are all read.
        (templated)
    :param data_format: ``csv``, ``parquet``, ``jsonl``, ``manifest`` (a Ground Truth output
        manifest, flattened: see :func:`~airflow_dl_provider.validation.data.flatten_manifest_record`)
        or ``auto`` (by each object's name: ``.csv``/``.tsv``, ``.parquet``, ``.jsonl``/``.json``,
        ``.manifest``, each optionally ``.gz``).
    :param expectations: a list of ``{"type": "expect_...", "kwargs": {...}}`` (arguments may also
        sit beside ``type``).
    :param suite_uri: ``s3://`` URI of a GX expectation suite JSON. (templated)
    :param suite_path: a local path to a GX expectation suite JSON (in the DAG bundle). (templated)
    :param label_manifest_checks: arguments of the built-in label manifest suite,
        :func:`~airflow_dl_provider.validation.data.label_manifest_suite`: ``label_attribute``
        (required), ``classes``, ``min_confidence``, ``confidence_mostly``, ``min_class_fraction``,
        ``max_class_fraction``.
    :param result_prefix: ``s3://`` prefix for the results; default ``validation/<task id>/``
        beside the data. (templated)
    :param soft_fail: on a failed validation, skip this task (and so the tasks downstream) instead
        of failing it.
    :param max_failures_logged: how many failing expectations the summary lists.
    :return: ``{"success", "evaluated", "successful", "failed", "success_percent", "rows",
        "failing": [{"index", "expectation_type", "column", "kwargs", "meta", "observed"}],
        "data_uri", "files", "result_json", "data_docs"}``, JSON-safe; pushed as ``return_value``
        whether the validation passed or not.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "data_uri", "suite_uri", "suite_path", "result_prefix"
    )
    ui_color = "#e8f4ea"
    operator_extra_links = (DataDocsLink(),)

    def __init__(
        self,
        *,
        data_uri: str,
        data_format: str = "auto",
        expectations: Sequence[Mapping[str, Any]] | None = None,
        suite_uri: str | None = None,
        suite_path: str | None = None,
        label_manifest_checks: Mapping[str, Any] | None = None,
        result_prefix: str | None = None,
        soft_fail: bool = False,
        max_failures_logged: int = DEFAULT_MAX_FAILING,
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id", "validate")
        try:
            if data_format not in DATA_FORMATS:
                raise DataValidationError(
                    f"data_format: {data_format!r} is not one of {', '.join(DATA_FORMATS)}"
                )
            if not (expectations or suite_uri or suite_path or label_manifest_checks):
                raise DataValidationError(
                    "expectations: none given; pass expectations, suite_uri, suite_path or label_manifest_checks"
                )
            if max_failures_logged < 1:
                raise DataValidationError(f"max_failures_logged: must be >= 1, got {max_failures_logged}")
            self.inline_expectations = parse_expectations(expectations) if expectations else []
            self.builtin_expectations = _builtin_suite(label_manifest_checks)
        except DataValidationError as err:
            raise DataValidationError(f"{task_id}: {err}") from None
        super().__init__(**kwargs)
        self.data_uri = data_uri
        self.data_format = data_format
        self.expectations = expectations
        self.suite_uri = suite_uri
        self.suite_path = suite_path
        self.label_manifest_checks = dict(label_manifest_checks) if label_manifest_checks else None
        self.result_prefix = result_prefix
        self.soft_fail = soft_fail
        self.max_failures_logged = max_failures_logged

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_dl_provider.validation.data import validate

        s3 = self.hook.conn
        bucket, key = self._result_location(context)
        expectations = self._load_expectations(s3)
        frame, files = self._read(s3, skip_prefix=self._result_root())
        outcome = validate(frame, expectations, max_failing=self.max_failures_logged, suite_name=self.task_id)
        del frame
        summary = {
            **outcome.summary,
            "data_uri": self.data_uri,
            "files": len(files),
            **self._publish(s3, outcome, bucket, key),
        }
        line = outcome.describe()
        if outcome.success:
            self.log.info("Validation of %s passed: %s", self.data_uri, line)
            return summary
        # Pushed before failing, so a downstream (trigger_rule="all_done") or a person sees why.
        context["ti"].xcom_push(key="return_value", value=summary)
        self.publish(context, summary)  # its Data Docs link too: the page says why
        self.log.error("Validation of %s failed: %s; result: %s", self.data_uri, line, summary["data_docs"])
        message = (
            f"{self.task_id}: {self.data_uri} failed validation: {line}; result: {summary['result_json']}"
        )
        if self.soft_fail:
            raise AirflowSkipException(f"soft_fail: {message}")
        raise DataValidationError(message, summary=summary)

    def _load_expectations(self, s3: Any) -> list[dict[str, Any]]:
        from airflow_dl_provider.validation.data import load_expectations

        from_suites: list[dict[str, Any]] = []
        if self.suite_uri:
            from_suites += load_expectations(self._read_suite_uri(s3), where=f"suite_uri {self.suite_uri}")
        if self.suite_path:
            path = Path(self.suite_path)
            if not path.is_file():
                raise DataValidationError(
                    f"suite_path: {self.suite_path} is not a file (relative to {Path.cwd()})"
                )
            from_suites += load_expectations(path.read_bytes(), where=f"suite_path {self.suite_path}")
        inline = load_expectations(self.inline_expectations) if self.inline_expectations else []
        builtin = (
            load_expectations(self.builtin_expectations, where="label_manifest_checks")
            if self.builtin_expectations
            else []
        )
        return inline + from_suites + builtin

    def _read_suite_uri(self, s3: Any) -> bytes:
        bucket, key = _split(str(self.suite_uri), "suite_uri")
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as err:
            code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
            raise DataValidationError(f"suite_uri: cannot read {self.suite_uri} ({code})") from None
        return body

    def _read(self, s3: Any, skip_prefix: tuple[str, str]) -> tuple[Any, list[str]]:
        import pandas as pd

        from airflow_dl_provider.validation.data import guess_format, read_frame

        # Results of an earlier run written under the data prefix are not data.
        exclude = skip_prefix[1] + "/" if skip_prefix[0] == _split(self.data_uri, "data_uri")[0] else None
        bucket, keys = self.data_keys(
            self.data_uri, skip_name=_SKIP_NAME, error=DataValidationError, exclude_prefix=exclude
        )
        attributes = [self.label_manifest_checks["label_attribute"]] if self.label_manifest_checks else None
        frames = []
        for key in keys:
            name = f"s3://{bucket}/{key}"
            data_format = guess_format(key) if self.data_format == "auto" else self.data_format
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                data = body.read()
            finally:
                body.close()
            frames.append(read_frame(data, data_format, name=name, label_attributes=attributes))
            del data
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        self.log.info(
            "Read %d rows x %d columns from %d object(s) under %s",
            len(frame),
            frame.shape[1],
            len(keys),
            self.data_uri,
        )
        return frame, [f"s3://{bucket}/{k}" for k in keys]

    def _result_root(self) -> tuple[str, str]:
        """Bucket and key of ``result_prefix``: by default ``validation/<task id>`` beside the data."""
        prefix = (
            self.result_prefix or f"{posixpath.dirname(self.data_uri.rstrip('/'))}/validation/{self.task_id}"
        )
        bucket, key = _split(prefix.rstrip("/"), "result_prefix")
        return bucket, key

    def _result_location(self, context: Any) -> tuple[str, str]:
        """Bucket and key prefix of this run's results: ``<result_prefix>/<run id>[/<map index>]``."""
        bucket, root = self._result_root()
        run = re.sub(r"[^A-Za-z0-9_.=-]", "-", str(context.get("run_id", "manual")))
        map_index = getattr(context.get("ti"), "map_index", -1)
        if isinstance(map_index, int) and map_index >= 0:
            run = f"{run}/{map_index}"
        return bucket, f"{root}/{run}" if root else run

    def _publish(self, s3: Any, outcome: ValidationOutcome, bucket: str, key: str) -> dict[str, str]:
        # One put per object is atomic: a reader sees a whole result or none of it.
        s3.put_object(
            Bucket=bucket,
            Key=f"{key}/{RESULT_JSON}",
            Body=outcome.result_json().encode(),
            ContentType="application/json",
        )
        s3.put_object(
            Bucket=bucket,
            Key=f"{key}/{DATA_DOCS}",
            Body=outcome.data_docs_html().encode(),
            ContentType="text/html; charset=utf-8",
        )
        return {
            "result_json": f"s3://{bucket}/{key}/{RESULT_JSON}",
            "data_docs": f"s3://{bucket}/{key}/{DATA_DOCS}",
        }


def _split(uri: str, field: str) -> tuple[str, str]:
    try:
        return split_s3_uri(uri, field)
    except ValueError as err:  # PreflightError: the same one line, as this operator's error type
        raise DataValidationError(str(err)) from None


def _builtin_suite(checks: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not checks:
        return []
    allowed = (
        "label_attribute",
        "classes",
        "min_confidence",
        "confidence_mostly",
        "min_class_fraction",
        "max_class_fraction",
    )
    unknown = sorted(set(checks) - set(allowed))
    if unknown:
        raise DataValidationError(
            f"label_manifest_checks: unknown key(s) {unknown}; known: {', '.join(allowed)}"
        )
    options = {k: checks[k] for k in allowed[1:] if k in checks}
    return label_manifest_suite(str(checks.get("label_attribute") or ""), **options)
