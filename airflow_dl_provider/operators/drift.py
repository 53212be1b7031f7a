"""Compare a data set with the model's baseline; on drift emit an Asset event, otherwise short-circuit."""

from __future__ import annotations

import posixpath
import re
import tempfile
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.assets import Asset

from airflow_dl_provider.exceptions import DriftInputError
from airflow_dl_provider.links.console import DriftReportLink
from airflow_dl_provider.operators.base import S3Operator

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow_dl_provider.drift.check import DriftResult

try:
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2.x
    from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef]

DATA_FORMATS = ("auto", "csv", "parquet", "jsonl", "data_capture")
#: Keys under a prefix that are bookkeeping, not data (Spark/EMR markers, manifests, dotfiles).
_SKIP_NAME = re.compile(r"(^[_.])|(\.(manifest|crc|out)$)")


class DriftDetectionOperator(S3Operator):
    """Check a data set in S3 for drift against the model's baseline profile.

    The data (batch transform input, endpoint data capture, any prefix) is streamed in chunks
    through :class:`~airflow_dl_provider.drift.check.DriftCheck`, so memory stays at one chunk
    whatever its size. A JSON report with every score and an HTML page with a chart per feature
    are written under ``report_prefix``. On drift the task succeeds and the drift Asset gets an
    event whose ``extra`` is the evidence, so a retraining DAG scheduled on it starts; without
    drift the task is skipped: downstream tasks are skipped and no Asset event is emitted.

    :param baseline_uri: ``s3://`` URI of the baseline JSON built at training time. (templated)
    :param data_uri: ``s3://`` URI of one object, or a prefix whose objects are read in key order.
        (templated)
    :param data_format: ``csv``, ``parquet``, ``jsonl``, ``data_capture`` or ``auto`` (by name;
        JSON Lines holding ``captureData`` are data capture).
    :param features: check only these features (default: every feature of the baseline, and a
        data column the baseline lacks is an error). (templated)
    :param columns: names for headerless data (data capture CSV); default the baseline's features.
    :param capture: for data capture, ``input`` (requests) or ``output`` (responses).
    :param thresholds: a dict of :class:`~airflow_dl_provider.drift.thresholds.DriftThresholds`
        fields (``psi``, ``ks_statistic``, ``wasserstein_normed``, ``js_distance``,
        ``missing_rate``, ``ks_pvalue``, ``chi2_pvalue``, ``min_rows``, ``min_features_drifted``,
        ``max_invalid_fraction``); checked when the DAG is parsed.
    :param report_prefix: where reports go, under ``<run id>/``; default ``drift-reports/`` beside
        the baseline. (templated)
    :param model_version: recorded in the report and the evidence; default the baseline's. (templated)
    :param model_name: names the default Asset, ``s3://<baseline bucket>/drift/<model_name>``
        (default: the task id).
    :param asset_uri: the drift Asset's URI, fixed at parse time so DAGs can be scheduled on it.
    :param soft_fail: skip instead of failing when the inputs are unusable (no data yet, say).
    :param chunk_rows: rows per chunk.
    :return: ``{"drifted", "model_version", "features_drifted", "features_too_few_rows", "rows",
        "scores": {feature: {score: value}}, "report_json", "report_html", "data_uri", "files",
        "asset_uri"}``; pushed as the return value on drift, and as XCom ``drift_summary`` in both
        cases.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "baseline_uri", "data_uri", "features", "report_prefix", "model_version"
    )
    ui_color = "#fdf1d6"
    operator_extra_links = (DriftReportLink(),)

    def __init__(
        self,
        *,
        baseline_uri: str,
        data_uri: str,
        data_format: str = "auto",
        features: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        capture: str = "input",
        thresholds: Mapping[str, Any] | None = None,
        report_prefix: str | None = None,
        model_version: str | None = None,
        model_name: str | None = None,
        asset_uri: str | None = None,
        soft_fail: bool = False,
        chunk_rows: int = 50_000,
        **kwargs: Any,
    ) -> None:
        from airflow_dl_provider.drift.thresholds import DriftThresholds

        task_id = kwargs.get("task_id", "drift")
        if data_format not in DATA_FORMATS:
            raise DriftInputError(
                f"{task_id}: data_format: {data_format!r} is not one of {', '.join(DATA_FORMATS)}"
            )
        if capture not in ("input", "output"):
            raise DriftInputError(f"{task_id}: capture: must be 'input' or 'output', got {capture!r}")
        if chunk_rows < 1:
            raise DriftInputError(f"{task_id}: chunk_rows: must be >= 1, got {chunk_rows}")
        try:
            self.drift_thresholds = DriftThresholds.from_mapping(thresholds)
        except DriftInputError as err:
            raise DriftInputError(f"{task_id}: {err}") from None
        if asset_uri is None:
            if "{{" in baseline_uri or not baseline_uri.startswith("s3://"):
                raise DriftInputError(
                    f"{task_id}: asset_uri: required when baseline_uri is templated or not an s3:// URI"
                )
            bucket = baseline_uri.removeprefix("s3://").partition("/")[0]
            asset_uri = f"s3://{bucket}/drift/{model_name or task_id}"
        self.asset = Asset(asset_uri)
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), self.asset]
        super().__init__(**kwargs)
        self.baseline_uri = baseline_uri
        self.data_uri = data_uri
        self.data_format = data_format
        self.features = features
        self.columns = columns
        self.capture = capture
        self.thresholds = thresholds
        self.report_prefix = report_prefix
        self.model_version = model_version
        self.asset_uri = asset_uri
        self.soft_fail = soft_fail
        self.chunk_rows = chunk_rows

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            result, files = self._check(context)
        except DriftInputError as err:
            if self.soft_fail:
                raise AirflowSkipException(f"soft_fail: {err}") from None
            raise
        summary = self._publish(context, result, files)
        context["ti"].xcom_push(key="drift_summary", value=summary)
        self.publish(context, summary)  # the report link, also when no drift skips downstream
        if not result.drifted:
            unjudged = result.features_too_few_rows
            if unjudged and len(unjudged) == len(result.features):
                message = f"too few rows to judge drift: {result.rows} rows of {self.data_uri} (min_rows {self.drift_thresholds.min_rows})"
            else:
                message = f"no drift in {result.rows} rows of {self.data_uri}"
                if unjudged:
                    message += f"; too few rows to judge {unjudged}"
            self.log.info("%s; skipping downstream tasks", message)
            raise AirflowSkipException(message)
        evidence = {
            "model_version": summary["model_version"],
            "features_drifted": summary["features_drifted"],
            "scores": {f: summary["scores"][f] for f in summary["features_drifted"]},
            "rows": summary["rows"],
            "data_uri": self.data_uri,
            "report_json": summary["report_json"],
            "report_html": summary["report_html"],
        }
        context["outlet_events"][self.asset].extra = evidence
        self.log.info(
            "Drift in %s: %s; Asset event on %s", self.data_uri, summary["features_drifted"], self.asset_uri
        )
        return summary

    def _check(self, context: Any) -> tuple[DriftResult, list[str]]:
        from airflow_dl_provider.drift.check import DriftCheck
        from airflow_dl_provider.drift.profile import load_baseline

        s3 = self.hook.conn
        profile = load_baseline(s3, self.baseline_uri)
        if self.model_version:
            profile.model_version = str(self.model_version)
        check = DriftCheck(profile, self.drift_thresholds, self.features, where=f"data_uri {self.data_uri}")
        bucket, names = self.data_keys(self.data_uri, skip_name=_SKIP_NAME, error=DriftInputError)
        keys = [(bucket, name) for name in names]
        columns = list(self.columns) if self.columns else list(profile.features)
        types = {name: feature.kind for name, feature in profile.features.items()}
        for bucket, key in keys:
            for chunk in self._chunks(s3, bucket, key, columns, types):
                check.update(chunk)
                del chunk  # before the reader builds the next one
        self.log.info("Read %d rows from %d object(s) under %s", check.rows, len(keys), self.data_uri)
        return check.result(), [f"s3://{b}/{k}" for b, k in keys]

    def _chunks(
        self, s3: Any, bucket: str, key: str, columns: list[str], types: Mapping[str, str]
    ) -> Iterator[Mapping[str, Any]]:
        from airflow_dl_provider.drift.readers import guess_format, read_chunks

        name = f"s3://{bucket}/{key}"
        data_format = self.data_format
        if data_format == "auto":
            head = b""
            if key.lower().removesuffix(".gz").endswith((".json", ".jsonl", ".ndjson")) and not key.endswith(
                ".gz"
            ):
                head = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-4095")["Body"].read()
            data_format = guess_format(key, head)
        if data_format == "parquet":
            # Parquet's footer is at the end: spool the object to disk, not to memory.
            with tempfile.TemporaryFile() as spool:
                s3.download_fileobj(bucket, key, spool)
                spool.seek(0)
                yield from read_chunks(
                    spool, "parquet", name=name, chunk_rows=self.chunk_rows, columns=self.features
                )
            return
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from read_chunks(
                body,
                data_format,
                name=name,
                chunk_rows=self.chunk_rows,
                columns=columns,
                capture=self.capture,
                types=types,
            )
        finally:
            body.close()

    def _publish(self, context: Any, result: DriftResult, files: list[str]) -> dict[str, Any]:
        from airflow_dl_provider.drift.report import report_html, report_json
        from airflow_dl_provider.validation.preflight import split_s3_uri

        prefix = self.report_prefix or f"{posixpath.dirname(self.baseline_uri.rstrip('/'))}/drift-reports"
        run = re.sub(r"[^A-Za-z0-9_.=-]", "-", str(context.get("run_id", "manual")))
        bucket, key = split_s3_uri(f"{prefix.rstrip('/')}/{run}", "report_prefix")
        json_uri = f"s3://{bucket}/{key}/drift-report.json"
        html_uri = f"s3://{bucket}/{key}/drift-report.html"
        extra = {
            "data_uri": self.data_uri,
            "baseline_uri": self.baseline_uri,
            "asset_uri": self.asset_uri,
            "files": len(files),
        }
        s3 = self.hook.conn
        # One put per object is atomic: a reader sees the whole report or none of it.
        s3.put_object(
            Bucket=bucket,
            Key=f"{key}/drift-report.json",
            Body=report_json(result, extra).encode(),
            ContentType="application/json",
        )
        s3.put_object(
            Bucket=bucket,
            Key=f"{key}/drift-report.html",
            Body=report_html(result, title=f"Drift: {self.data_uri}", extra=extra).encode(),
            ContentType="text/html; charset=utf-8",
        )
        return {
            **result.summary(),
            "report_json": json_uri,
            "report_html": html_uri,
            "data_uri": self.data_uri,
            "files": len(files),
            "asset_uri": self.asset_uri,
        }


BASELINE_FORMATS = ("auto", "csv", "parquet", "jsonl")


class DriftBaselineOperator(S3Operator):
    """Profile a model's training data and save the baseline beside the model, versioned with it.

    Run it right after training, on the data the model was trained on: every later
    :class:`DriftDetectionOperator` for this model version compares with this profile. The label
    column is left out, since drift checks look at the features a model is asked about.

    :param data_uri: ``s3://`` URI of one object, or a prefix whose data objects (markers such as
        ``_SUCCESS`` and ``.out`` files skipped) are read in key order. (templated)
    :param model_artifacts: the model's ``s3://.../model.tar.gz``; the baseline is written to
        ``baseline_uri_for(model_artifacts)``, its ``drift-baseline.json`` neighbour. (templated)
    :param label_column: the column to leave out; ``None`` when the data has no label.
    :param data_format: ``csv`` (with a header row), ``parquet``, ``jsonl`` or ``auto`` (by name).
    :param features: profile only these columns (default: every column but the label).
    :param categorical: columns that are categories even where they read as numbers (integer
        codes); they read the same from CSV, JSON Lines and Parquet.
    :param bins: fine quantile bins per numeric feature (default 2,000; the KS error is about 1/bins).
    :return: ``{"baseline_uri": uri, "features": [name, ...], "rows": n}``
    """

    template_fields: Sequence[str] = aws_template_fields("data_uri", "model_artifacts")
    ui_color = "#fdf1d6"

    def __init__(
        self,
        *,
        data_uri: str,
        model_artifacts: str,
        label_column: str | None = "label",
        data_format: str = "csv",
        features: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        bins: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if data_format not in BASELINE_FORMATS:
            raise DriftInputError(
                f"{self.task_id}: data_format: {data_format!r} is not one of {', '.join(BASELINE_FORMATS)}"
            )
        if bins is not None and bins < 10:
            raise DriftInputError(f"{self.task_id}: bins: must be at least 10, got {bins}")
        if features is not None and label_column is not None and label_column in features:
            raise DriftInputError(
                f"{self.task_id}: features: {label_column!r} is the label column; drift is checked on features"
            )
        self.data_uri = data_uri
        self.model_artifacts = model_artifacts
        self.label_column = label_column
        self.data_format = data_format
        self.features = list(features) if features is not None else None
        self.categorical = list(categorical)
        self.bins = bins

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_dl_provider.drift.baseline import build_baseline
        from airflow_dl_provider.drift.profile import DEFAULT_BINS, baseline_uri_for, save_baseline

        s3 = self.hook.conn
        bucket, names = self.data_keys(
            self.data_uri, skip_name=_SKIP_NAME, error=DriftInputError, hint="is the training data there?"
        )
        keys = [(bucket, name) for name in names]

        def training_data() -> Iterator[Mapping[str, Any]]:
            # The build reads the data twice (bounded memory): each pass streams every object again.
            first = True
            for bucket, key in keys:
                for chunk in self._chunks(s3, bucket, key):
                    if first:
                        self._check_label(list(chunk))
                        first = False
                    yield chunk

        uri = baseline_uri_for(str(self.model_artifacts))
        profile = build_baseline(
            training_data,
            features=self.features,
            exclude=[self.label_column] if self.label_column is not None else [],
            categorical=self.categorical,
            bins=self.bins or DEFAULT_BINS,
            model_version=str(self.model_artifacts),
            source=self.data_uri,
        )
        save_baseline(profile, s3, uri)
        self.log.info(
            "Baseline of %d features over %d rows of %s -> %s",
            len(profile.features),
            profile.rows,
            self.data_uri,
            uri,
        )
        return {"baseline_uri": uri, "features": list(profile.features), "rows": profile.rows}

    def _check_label(self, columns: list[str]) -> None:
        if self.label_column is not None and self.label_column not in columns:
            raise DriftInputError(
                f"label_column: {self.label_column!r} is not a column of {self.data_uri} ({columns[:5]}...); "
                "pass label_column=None when the data has no label"
            )

    def _chunks(self, s3: Any, bucket: str, key: str) -> Iterator[Mapping[str, Any]]:
        from airflow_dl_provider.drift.readers import guess_format, read_chunks

        name = f"s3://{bucket}/{key}"
        data_format = guess_format(key) if self.data_format == "auto" else self.data_format
        if data_format == "parquet":
            # Parquet's footer is at the end: spool the object to disk, not to memory.
            with tempfile.TemporaryFile() as spool:
                s3.download_fileobj(bucket, key, spool)
                spool.seek(0)
                yield from read_chunks(spool, "parquet", name=name)
            return
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        types = dict.fromkeys(self.categorical, "categorical")
        try:
            yield from read_chunks(body, data_format, name=name, types=types)
        finally:
            body.close()
