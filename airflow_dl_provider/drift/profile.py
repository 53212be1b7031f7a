"""The baseline profile: what a drift check needs to remember of the training data, and no more.

Per numeric feature, fine quantile bin edges taken from the sorted training values and the counts
between them (enough to recover the KS statistic to within ``ks_error_bound``, about 1/bins); per
categorical feature, value counts. It is saved as JSON next to the model so that it is versioned
with it, and it carries a ``format_version`` that the loader checks.
"""

from __future__ import annotations

import datetime
import json
import math
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_dl_provider.drift.thresholds import DEFAULT_MAX_INVALID_FRACTION
from airflow_dl_provider.exceptions import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

FORMAT_VERSION = "airflow-dl-drift-baseline/1"
#: Fine bins per numeric feature: the KS error bound is about 1/DEFAULT_BINS (0.0005), ten times
#: inside the 0.005 the acceptance asks for, at 16 KB per feature in JSON.
DEFAULT_BINS = 2000
#: PSI and Jensen-Shannon use the baseline's deciles: fine bins would make both mostly noise.
DEFAULT_PSI_BINS = 10
#: The most categories kept per feature; the rest are counted together as OTHER.
MAX_CATEGORIES = 1000
OTHER = "__other__"
#: Tokens read as a missing value rather than as a bad number.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})

Chunk = Mapping[str, Any]


def parse_numeric(values: Any) -> tuple[NDArray[np.float64], int]:
    """Floats from any column (numbers, strings, ``None``): missing values become NaN.

    :return: ``(floats, n_invalid)``; an invalid value (``"abc"``, ``inf``) is NaN in ``floats``
        and counted, so the caller can tell a bad column from a sparse one.
    """
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        floats = array.astype(np.float64, copy=False)
    else:
        try:
            floats = array.astype(np.float64)
        except (ValueError, TypeError):
            # Slow path only for a chunk holding a token numpy cannot parse ("", "NA", "abc").
            parsed = [_parse_one(v) for v in array.ravel()]
            floats = np.array([math.nan if v is None else v for v in parsed], dtype=np.float64)
            return floats, sum(v is None for v in parsed)
    infinite = np.isinf(floats)
    n_infinite = int(infinite.sum())
    if n_infinite:
        floats = np.where(infinite, np.nan, floats)
    return floats, n_infinite


def _parse_one(value: Any) -> float | None:
    """One value: NaN when missing, ``None`` when it is not a finite number."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip()
        if text.lower() in MISSING_TOKENS:
            return math.nan
        try:
            number = float(text)
        except ValueError:
            return None
    return None if math.isinf(number) else number


def as_categories(values: Any) -> NDArray[np.str_]:
    """Strings for a categorical column; missing values become ``""``."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind == "f":
        text = array.astype(str)
        text[np.isnan(array)] = ""
        return text
    return np.array(
        ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in array.ravel()]
    )


@dataclass
class NumericProfile:
    """One numeric feature of the baseline.

    :param edges: increasing bin edges; every one is a training value, ``edges[0]`` the minimum and
        ``edges[-1]`` the maximum.
    :param counts: training values per bin, length ``len(edges) + 1``: ``counts[0]`` is the values
        equal to ``edges[0]``, ``counts[k]`` those in ``(edges[k-1], edges[k]]``, and the last
        (always 0 here) those above ``edges[-1]``; a check counts its data the same way.
    :param sums: training values summed per bin (the bin means place mass for Wasserstein).
    :param ks_error_bound: the largest training mass strictly inside one bin: the KS statistic
        computed at the edges is at most this much below the exact one.
    """

    name: str
    edges: NDArray[np.float64]
    counts: NDArray[np.int64]
    sums: NDArray[np.float64]
    count: int
    missing: int
    mean: float
    std: float
    ks_error_bound: float
    kind: str = field(default="numeric", init=False)

    def cdf(self) -> NDArray[np.float64]:
        """The training ECDF at each edge."""
        return np.cumsum(self.counts[: self.edges.size]) / max(self.count, 1)

    def psi_groups(self, n_groups: int) -> NDArray[np.intp]:
        """Start index of each coarse group of fine bins, cut where the training CDF crosses k/n_groups.

        The groups are the training data's quantile bins (deciles by default); the first also takes
        current values below the minimum and the last those above the maximum.
        """
        cdf = self.cdf()
        cuts = np.searchsorted(cdf, np.arange(1, n_groups) / n_groups, side="left") + 1
        return np.unique(np.concatenate([[0], cuts[cuts < self.counts.size]])).astype(np.intp)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "ks_error_bound": self.ks_error_bound,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "sums": self.sums.tolist(),
        }


@dataclass
class CategoricalProfile:
    """One categorical feature of the baseline: counts per value (``OTHER`` for the long tail)."""

    name: str
    categories: list[str]
    counts: NDArray[np.int64]
    count: int
    missing: int
    kind: str = field(default="categorical", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "count": self.count,
            "missing": self.missing,
            "categories": list(self.categories),
            "counts": self.counts.tolist(),
        }


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass
class BaselineProfile:
    """The baseline of one model version: per-feature profiles in the training data's column order."""

    features: dict[str, FeatureProfile]
    rows: int
    model_version: str | None = None
    psi_bins: int = DEFAULT_PSI_BINS
    created_at: str = ""
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model_version": self.model_version,
            "created_at": self.created_at,
            "source": self.source,
            "rows": self.rows,
            "psi_bins": self.psi_bins,
            "features": {name: profile.to_dict() for name, profile in self.features.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "baseline") -> BaselineProfile:
        version = data.get("format_version") if isinstance(data, Mapping) else None
        if version != FORMAT_VERSION:
            raise DriftInputError(
                f"baseline: {where} is format {version!r}, this provider reads {FORMAT_VERSION!r}; "
                "rebuild it with airflow_dl_provider.drift.build_baseline()"
            )
        features: dict[str, FeatureProfile] = {}
        try:
            for name, spec in data["features"].items():
                if spec["kind"] == "numeric":
                    features[name] = NumericProfile(
                        name=name,
                        edges=np.asarray(spec["edges"], dtype=np.float64),
                        counts=np.asarray(spec["counts"], dtype=np.int64),
                        sums=np.asarray(spec["sums"], dtype=np.float64),
                        count=int(spec["count"]),
                        missing=int(spec["missing"]),
                        mean=float(spec["mean"]),
                        std=float(spec["std"]),
                        ks_error_bound=float(spec["ks_error_bound"]),
                    )
                else:
                    features[name] = CategoricalProfile(
                        name=name,
                        categories=[str(c) for c in spec["categories"]],
                        counts=np.asarray(spec["counts"], dtype=np.int64),
                        count=int(spec["count"]),
                        missing=int(spec["missing"]),
                    )
            return cls(
                features=features,
                rows=int(data["rows"]),
                model_version=data.get("model_version"),
                psi_bins=int(data.get("psi_bins", DEFAULT_PSI_BINS)),
                created_at=str(data.get("created_at", "")),
                source=data.get("source"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DriftInputError(
                f"baseline: {where} is not a valid baseline ({type(err).__name__}: {err})"
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "baseline") -> BaselineProfile:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise DriftInputError(f"baseline: {where} is not JSON ({err})") from None
        return cls.from_dict(data, where)


def _numeric_profile(name: str, values: NDArray[np.float64], missing: int, bins: int) -> NumericProfile:
    ordered = np.sort(values[~np.isnan(values)])
    n = int(ordered.size)
    if n == 0:
        raise DriftInputError(
            f"baseline: numeric feature {name!r} has no values; drop it or mark it categorical"
        )
    # Edges are training values at evenly spaced ranks, so each open bin holds at most ~n/bins of them.
    ranks = np.unique(np.round(np.linspace(0, n - 1, bins + 1)).astype(np.int64))
    edges = np.unique(ordered[ranks])
    below_or_at = np.searchsorted(ordered, edges, side="right")
    below = np.searchsorted(ordered, edges, side="left")
    counts = np.diff(np.concatenate([[0], below_or_at, [n]])).astype(np.int64)
    inside = below[1:] - below_or_at[:-1]  # strictly between consecutive edges
    bins_of = np.searchsorted(edges, ordered, side="left")
    sums = np.bincount(bins_of, weights=ordered, minlength=edges.size + 1)
    return NumericProfile(
        name=name,
        edges=edges.astype(np.float64),
        counts=counts,
        sums=sums.astype(np.float64),
        count=n,
        missing=missing,
        mean=float(ordered.mean()),
        std=float(ordered.std()),
        ks_error_bound=float(inside.max() / n) if inside.size else 0.0,
    )


def _categorical_profile(name: str, values: Any, max_categories: int) -> CategoricalProfile:
    text = as_categories(values)
    present = text[text != ""]
    uniques, counts = np.unique(present, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    keep = order[:max_categories]
    categories = [str(v) for v in uniques[keep]]
    kept = counts[keep].astype(np.int64)
    rest = int(counts[order[max_categories:]].sum())
    if rest:
        categories.append(OTHER)
        kept = np.append(kept, rest)
    return CategoricalProfile(
        name=name,
        categories=categories,
        counts=kept,
        count=int(present.size),
        missing=int(text.size - present.size),
    )


def _columns(data: Mapping[str, Any] | Iterable[Chunk]) -> dict[str, NDArray[Any]]:
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    parts: dict[str, list[NDArray[Any]]] = {}
    for chunk in data:
        for name, values in chunk.items():
            parts.setdefault(str(name), []).append(np.asarray(values))
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def build_baseline(
    data: Mapping[str, Any] | Iterable[Chunk],
    *,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    psi_bins: int = DEFAULT_PSI_BINS,
    max_categories: int = MAX_CATEGORIES,
    max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION,
    model_version: str | None = None,
    source: str | None = None,
) -> BaselineProfile:
    """Profile the training data once, for every later drift check of this model version.

    The build sorts each numeric column, so it holds the training columns in memory (once, at
    training time); the checks that use the profile hold only its bins.

    :param data: ``{column: values}`` or an iterable of such chunks (what the readers yield).
    :param features: the columns to profile (default: all); a label column should be left out.
    :param categorical: columns to treat as categories even if they parse as numbers. Any other
        column is numeric when at most ``max_invalid_fraction`` of its values fail to parse.
    :param bins: fine quantile bins per numeric feature (the KS error is about 1/bins).
    """
    if bins < 10:
        raise DriftInputError(f"bins: must be at least 10, got {bins}")
    if not 2 <= psi_bins <= bins:
        raise DriftInputError(f"psi_bins: must be between 2 and bins ({bins}), got {psi_bins}")
    columns = _columns(data)
    names = list(features) if features is not None else list(columns)
    missing_columns = [n for n in names if n not in columns]
    if missing_columns:
        raise DriftInputError(
            f"features: {missing_columns} are not columns of the training data ({list(columns)[:10]})"
        )
    if not names:
        raise DriftInputError("baseline: the training data has no columns")
    rows = len(columns[names[0]])
    if rows == 0:
        raise DriftInputError("baseline: the training data is empty")
    profiles: dict[str, FeatureProfile] = {}
    for name in names:
        values = columns[name]
        if name in categorical or values.dtype.kind == "b":
            profiles[name] = _categorical_profile(name, values, max_categories)
            continue
        floats, invalid = parse_numeric(values)
        if invalid > max_invalid_fraction * max(values.size, 1):
            profiles[name] = _categorical_profile(name, values, max_categories)
            continue
        missing = int(np.isnan(floats).sum()) - invalid
        profiles[name] = _numeric_profile(name, floats, missing, bins)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return BaselineProfile(
        features=profiles,
        rows=rows,
        model_version=model_version,
        psi_bins=psi_bins,
        created_at=created,
        source=source,
    )


def baseline_uri_for(model_artifacts: str, name: str = "drift-baseline.json") -> str:
    """Where a model's baseline lives: beside its ``model.tar.gz``, so it is versioned with it."""
    head = model_artifacts.rstrip("/")
    if head.endswith((".tar.gz", ".tgz", ".zip", ".pt", ".onnx", ".pkl", ".joblib")):
        head = posixpath.dirname(head)
    return f"{head}/{name}"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise DriftInputError(f"baseline_uri: {uri!r} is not an s3://bucket/key URI")
    return bucket, key


def save_baseline(profile: BaselineProfile, s3: Any, uri: str) -> str:
    """Write the profile as JSON to ``s3://`` (with the boto3 client ``s3``) or to a local path."""
    body = profile.to_json().encode()
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    else:
        Path(uri).write_bytes(body)
    return uri


def load_baseline(s3: Any, uri: str) -> BaselineProfile:
    """Read a profile saved by :func:`save_baseline`; another ``format_version`` is a one-line error."""
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as err:
            code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
            raise DriftInputError(
                f"baseline_uri: cannot read {uri} ({code}); build the baseline at training time"
            ) from None
    else:
        try:
            body = Path(uri).read_bytes()
        except OSError as err:
            raise DriftInputError(f"baseline_uri: cannot read {uri} ({err.strerror})") from None
    return BaselineProfile.from_json(body, where=uri)
