"""Prepare training channels from one CSV in S3: a seeded, reproducible train/validation/test split."""

from __future__ import annotations

import csv
import io
import random
import re
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Sequence

CHANNELS = ("train", "validation", "test")


def split_rows(
    n_rows: int, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Row indices per channel: the same inputs give the same split, on any machine."""
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + test_fraction must be < 1, got {validation_fraction + test_fraction:.2f}"
        )
    order = list(range(n_rows))
    random.Random(seed).shuffle(order)
    n_test = round(n_rows * test_fraction)
    n_validation = round(n_rows * validation_fraction)
    return {
        "test": sorted(order[:n_test]),
        "validation": sorted(order[n_test : n_test + n_validation]),
        "train": sorted(order[n_test + n_validation :]),
    }


class SplitDatasetOperator(AwsBaseOperator[AwsBaseHook]):
    """Split a CSV (header row, one label column) into ``train``/``validation``/``test`` channels.

    Each channel is written as one object under ``<output_prefix>/<run>/<channel>/data.csv``; the
    run's own prefix keeps every training job tied to the exact data it saw.

    :param source: ``s3://`` URI of the CSV. (templated)
    :param output_prefix: ``s3://`` prefix for the channels. (templated)
    :param label_column: must be a column of the header.
    :return: ``{"train": uri, "validation": uri, "test": uri, "rows": {channel: count}, "source": uri}``
    """

    # The generic hook with client_type="s3": S3Hook's helpers are not needed, and not importing its
    # module keeps DAG parsing light.
    aws_hook_class = AwsBaseHook
    template_fields: Sequence[str] = aws_template_fields("source", "output_prefix")

    def __init__(
        self,
        *,
        source: str,
        output_prefix: str,
        label_column: str = "label",
        validation_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if validation_fraction + test_fraction >= 1.0:
            raise ValueError(f"{self.task_id}: validation_fraction + test_fraction must be < 1")
        self.source = source
        self.output_prefix = output_prefix
        self.label_column = label_column
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.seed = seed

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "client_type": "s3"}

    def execute(self, context: Any) -> dict[str, Any]:
        s3 = self.hook.conn
        bucket, key = split_s3_uri(self.source, "source")
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        rows = list(csv.reader(io.StringIO(text)))
        if len(rows) < 2:
            raise ValueError(f"source: {self.source} has no data rows")
        header, body = rows[0], rows[1:]
        if self.label_column not in header:
            raise ValueError(
                f"label_column: {self.label_column!r} is not a column of {self.source} ({header[:5]}...)"
            )
        run = re.sub(r"[^A-Za-z0-9_.=-]", "-", context["run_id"])
        out_bucket, out_prefix = split_s3_uri(self.output_prefix.rstrip("/"), "output_prefix")
        result: dict[str, Any] = {"source": self.source, "rows": {}}
        for channel, indices in split_rows(
            len(body), self.validation_fraction, self.test_fraction, self.seed
        ).items():
            if not indices:
                continue
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body[i] for i in indices)
            channel_key = f"{out_prefix}/{run}/{channel}/"
            s3.put_object(Bucket=out_bucket, Key=channel_key + "data.csv", Body=buffer.getvalue().encode())
            result[channel] = f"s3://{out_bucket}/{channel_key}"
            result["rows"][channel] = len(indices)
        self.log.info("Split %d rows of %s: %s", len(body), self.source, result["rows"])
        return result
