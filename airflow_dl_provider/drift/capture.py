"""An endpoint's data capture as the drift check reads it: the files under a capture prefix, then their rows.

SageMaker writes what an endpoint captured to
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`` (UTC hour of the request), each
line one request and its response in the capture format (``captureData.endpointInput`` /
``endpointOutput``: ``observedContentType``, ``mode``, ``data``, ``encoding``; ``eventMetadata``;
``eventVersion``), which :func:`~airflow_dl_provider.drift.readers.read_data_capture` decodes. The local
backend's endpoint writes the same layout. Pure: give it any S3 client (boto3's, or moto's).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.drift.readers import read_data_capture
from airflow_dl_provider.exceptions import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

CAPTURE_LAYOUT_SOURCE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html"
)
# <endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl at the end of a key
_HOURLY = re.compile(r"(?:^|/)([^/]+)/([^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.jsonl$")


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise DriftInputError(f"capture: {uri!r} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def capture_hour(key: str) -> dt.datetime | None:
    """The UTC hour a capture file holds, from its key; None for a key not in the capture layout."""
    match = _HOURLY.search(key)
    if match is None:
        return None
    year, month, day, hour = (int(g) for g in match.groups()[2:])
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


def capture_files(
    s3: Any,
    destination: str,
    endpoint: str,
    *,
    variant: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[str]:
    """The ``s3://`` URIs of the endpoint's capture files, oldest hour first.

    :param destination: the endpoint config's ``DestinationS3Uri``.
    :param variant: one production variant's; None: every variant's.
    :param since: only hours from this one (UTC) on; :param until: only hours before this one.
    """
    bucket, prefix = _split(destination)
    prefix = "/".join(p for p in (prefix.strip("/"), endpoint, variant) if p) + "/"
    found: list[tuple[dt.datetime, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            hour = capture_hour(entry["Key"])
            if hour is None or (since and hour < since.replace(minute=0, second=0, microsecond=0)):
                continue
            if until is None or hour < until:
                found.append((hour, entry["Key"]))
    return [f"s3://{bucket}/{key}" for _, key in sorted(found)]


def capture_rows(
    s3: Any, uris: Sequence[str], *, columns: Sequence[str] | None = None, capture: str = "input"
) -> Iterator[dict[str, Any]]:
    """Each captured request (``capture="input"``) or response (``"output"``) row, file by file.

    :param columns: the feature names in order, for CSV payloads (they carry no header).
    """
    for uri in uris:
        bucket, key = _split(uri)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in read_data_capture(body, name=uri, columns=columns, capture=capture):
            names = list(chunk)
            for values in zip(*(chunk[n] for n in names), strict=True):
                yield {n: (v.item() if hasattr(v, "item") else v) for n, v in zip(names, values, strict=True)}
