"""Building the baseline in bounded memory: two passes over the training data, whatever its size.

Pass 1 counts each column's rows, missing and invalid values and, per numeric column, its minimum,
maximum and mean, and keeps a uniform sample of at most ``sample_size`` values. The sample's
quantiles place the fine bin edges (the exact minimum and maximum at the ends). Pass 2 counts every
value into those fixed edges, exactly, with each bin's mean, the values equal to each edge, the
standard deviation around the pass-1 mean, and the categorical value counts. Memory is one chunk
plus ``sample_size`` values per numeric feature (and the distinct values of categorical ones),
flat in the number of rows.

The KS error bound is measured, not assumed: pass 2 counts the training values strictly inside each
bin exactly, and ``ks_error_bound`` is the largest such mass. When the data fits in the sample the
edges are exact quantiles and the bound is about ``1/bins``. Otherwise each bin holds
``s = sample_size/bins`` sample values and its true mass is a spacing of uniform order statistics
(mean ``1/bins``, relative spread ``1/sqrt(s)``); a Bernstein bound over the ``bins`` bins gives
``ks_error_bound <= (1 + t)/bins`` with ``t`` solving ``s t^2 / (2 + 2t/3) = ln(bins/delta)``: for the
defaults (2,000 bins, 100,000 samples, delta = 0.001) ``t = 0.86``, a bound under ``2/bins`` = 0.001.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from airflow_dl_provider.drift.columns import category_counts, is_arrow, is_bool, to_floats
from airflow_dl_provider.drift.histogram import (
    SCALED_ABOVE,
    EdgeCounts,
    Sample,
    quantile_edges,
    scale_for,
    sort_finite,
)
from airflow_dl_provider.drift.profile import (
    DEFAULT_BINS,
    DEFAULT_PSI_BINS,
    MAX_CATEGORIES,
    OTHER,
    BaselineProfile,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    min_reference_rows,
)
from airflow_dl_provider.drift.tail import TailValues
from airflow_dl_provider.drift.thresholds import DEFAULT_MAX_INVALID_FRACTION
from airflow_dl_provider.exceptions import DriftInputError

#: 50 sample values per fine bin: the KS error bound stays under 2/bins (see the module docstring).
DEFAULT_SAMPLE_SIZE = 100_000
#: Rows per slice when the training data is given in memory, so temporaries stay small.
SLICE_ROWS = 100_000

Chunk = Mapping[str, Any]
ChunkSource = Callable[[], Iterable[Chunk]]


def _slices(columns: dict[str, Any], rows: int) -> Iterable[Chunk]:
    for start in range(0, rows, SLICE_ROWS):
        yield {name: values[start : start + SLICE_ROWS] for name, values in columns.items()}


def chunk_source(data: Mapping[str, Any] | Iterable[Chunk] | ChunkSource) -> ChunkSource:
    """A function returning a fresh iterator of chunks, since the build reads its data twice."""
    if isinstance(data, Mapping):
        columns = {str(k): v if is_arrow(v) else np.asarray(v) for k, v in data.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise DriftInputError(
                f"data: columns have different lengths {sorted(lengths)}; pass equal-length columns"
            )
        rows = lengths.pop() if lengths else 0
        return lambda: _slices(columns, rows)
    if callable(data):
        return data
    if iter(data) is data:
        raise DriftInputError(
            "data: a one-shot iterator cannot be read twice (the baseline build makes two passes); "
            "pass a list of chunks or a function that returns a fresh iterator, e.g. lambda: read_csv(open(path, 'rb'))"
        )
    return lambda: data


def _chunk_rows(chunk: Chunk) -> int:
    return max((len(v) for v in chunk.values()), default=0)


def _mean(ordered: np.ndarray) -> float:
    scale = scale_for(max(abs(ordered[0]), abs(ordered[-1])), SCALED_ABOVE)
    return float(np.mean(ordered / scale) * scale) if scale != 1.0 else float(np.mean(ordered))


class _Scan:
    """Pass 1 for one column: rows, missing, invalid; for a numeric column min, max, mean and a sample."""

    def __init__(self, name: str, categorical: bool, sample: Sample, rows_before: int) -> None:
        self.name = name
        self.categorical = categorical
        self.sample = sample
        self.absent = rows_before  # rows of earlier chunks that lacked the column
        self.rows = self.valid = self.missing = self.invalid = 0
        self.low, self.high, self.mean = math.inf, -math.inf, 0.0

    def add(self, values: Any) -> None:
        self.rows += len(values)
        if self.categorical or is_bool(values):
            self.categorical = True
            return
        floats, invalid, _ = to_floats(values)
        ordered, nan, infinite = sort_finite(floats)
        self.invalid += invalid + infinite
        self.missing += nan - invalid
        if ordered.size:
            self.low, self.high = min(self.low, float(ordered[0])), max(self.high, float(ordered[-1]))
            total = self.valid + ordered.size
            # Weighted, not (a - b) * w: the difference of two means near the float limit overflows.
            self.mean = self.mean * (self.valid / total) + _mean(ordered) * (ordered.size / total)
            self.valid = total
            self.sample.add(ordered)

    def is_numeric(self, max_invalid_fraction: float) -> bool:
        return not self.categorical and self.invalid <= max_invalid_fraction * max(self.rows, 1)


class _NumericPass:
    """Pass 2 for one numeric column: exact counts in the edges, bin means, spread around the mean."""

    def __init__(self, scan: _Scan, bins: int) -> None:
        self.scan = scan
        self.edges = quantile_edges(scan.sample.values, scan.low, scan.high, bins)
        magnitude = max(abs(scan.low), abs(scan.high))
        self.bins = EdgeCounts(self.edges, scale=scale_for(magnitude, SCALED_ABOVE), at_edges=True)
        self.spread_unit = scale_for(magnitude, 0.0)
        self.squares = 0.0
        scan.sample = Sample(0, scan.sample.rng)  # the edges are placed: let the sample go

    def add(self, values: Any) -> None:
        ordered, _, _ = sort_finite(to_floats(values)[0])
        if ordered.size:
            self.bins.add(ordered)
            unit = self.spread_unit
            self.squares += float(np.sum(np.square(ordered / unit - self.scan.mean / unit)))

    def profile(self) -> NumericProfile:
        scan, bins = self.scan, self.bins
        counts = bins.counts
        assert bins.at_edges is not None
        means = np.divide(bins.sums, counts, out=np.zeros_like(bins.sums), where=counts > 0) * bins.scale
        inside = counts[1 : self.edges.size] - bins.at_edges[1:]  # strictly between two edges
        return NumericProfile(
            name=scan.name,
            edges=self.edges,
            counts=counts,
            means=np.clip(means, scan.low, scan.high),
            count=scan.valid,
            missing=scan.missing + scan.absent,
            mean=min(max(scan.mean, scan.low), scan.high),
            std=self.spread_unit * math.sqrt(self.squares / scan.valid),
            ks_error_bound=float(inside.max() / scan.valid) if inside.size else 0.0,
        )


class _CategoricalPass:
    def __init__(self, scan: _Scan) -> None:
        self.scan = scan
        self.counts: dict[str, int] = {}
        self.missing = 0

    def add(self, values: Any) -> None:
        counts, missing = category_counts(values)
        self.missing += missing
        for value, count in counts.items():
            self.counts[value] = self.counts.get(value, 0) + count

    def profile(self, max_categories: int) -> CategoricalProfile:
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        kept, rest = ranked[:max_categories], ranked[max_categories:]
        categories = [value for value, _ in kept]
        counts = [count for _, count in kept]
        if rest:
            categories.append(OTHER)
            counts.append(sum(count for _, count in rest))
        return CategoricalProfile(
            name=self.scan.name,
            categories=categories,
            counts=np.asarray(counts, dtype=np.int64),
            count=sum(self.counts.values()),
            missing=self.missing + self.scan.absent,
            tail=TailValues.of(value for value, _ in rest) if rest else None,
        )


def _first_pass(
    source: ChunkSource,
    wanted: Callable[[str], bool],
    categorical: Sequence[str],
    sample_size: int,
    seed: int,
) -> tuple[dict[str, _Scan], int]:
    rng = np.random.default_rng(seed)
    scans: dict[str, _Scan] = {}
    rows = 0
    for chunk in source():
        for name, values in chunk.items():
            name = str(name)
            if not wanted(name):
                continue
            if name not in scans:
                scans[name] = _Scan(name, name in categorical, Sample(sample_size, rng), rows)
            scans[name].add(values)
        n = _chunk_rows(chunk)
        for scan in scans.values():
            if scan.name not in chunk:
                scan.absent += n
        rows += n
    return scans, rows


def _second_pass(
    read: ChunkSource, scans: Sequence[_Scan], bins: int, max_categories: int, max_invalid_fraction: float
) -> dict[str, FeatureProfile]:
    passes: dict[str, _NumericPass | _CategoricalPass] = {}
    for scan in scans:
        if not scan.is_numeric(max_invalid_fraction):
            passes[scan.name] = _CategoricalPass(scan)
        elif scan.valid:
            passes[scan.name] = _NumericPass(scan, bins)
        else:
            raise DriftInputError(
                f"features: numeric feature {scan.name!r} has no values; leave it out or mark it categorical"
            )
    for chunk in read():
        for name, work in passes.items():
            if name in chunk:
                work.add(chunk[name])
    return {
        name: work.profile() if isinstance(work, _NumericPass) else work.profile(max_categories)
        for name, work in passes.items()
    }


def _check_sizes(profiles: Mapping[str, FeatureProfile], rows: int, psi_bins: int) -> None:
    least = min_reference_rows(psi_bins)
    if rows < least:
        raise DriftInputError(
            f"data: the training data has {rows} rows; a baseline needs at least {least} "
            f"({least // psi_bins} per PSI bin, psi_bins={psi_bins}): build it from more rows or lower psi_bins"
        )
    for name, profile in profiles.items():
        if profile.count < least:
            raise DriftInputError(
                f"features: {profile.kind} feature {name!r} has {profile.count} values in {rows} rows; "
                f"a baseline needs at least {least}: leave it out (features=[...]) or build from more rows"
            )


def build_baseline(
    data: Mapping[str, Any] | Iterable[Chunk] | ChunkSource,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    psi_bins: int = DEFAULT_PSI_BINS,
    max_categories: int = MAX_CATEGORIES,
    max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    model_version: str | None = None,
    source: str | None = None,
    seed: int = 0,
) -> BaselineProfile:
    """Profile the training data once, for every later drift check of this model version.

    :param data: ``{column: values}``, a list of such chunks, or a function returning a fresh
        iterator of chunks (what the readers yield): the build reads it twice.
    :param features: the columns to profile (default: all but ``exclude``).
    :param exclude: columns to leave out, such as the label.
    :param categorical: columns to treat as categories even if they parse as numbers. Any other
        column is numeric when at most ``max_invalid_fraction`` of its values fail to parse.
    :param bins: fine quantile bins per numeric feature (the KS error is about 1/bins).
    :param sample_size: values per numeric feature that place the bin edges; memory is this many
        floats per feature, whatever the row count.
    :param seed: of the sample, so that a build is reproducible.
    """
    if bins < 10:
        raise DriftInputError(f"bins: must be at least 10, got {bins}")
    if not 2 <= psi_bins <= bins:
        raise DriftInputError(f"psi_bins: must be between 2 and bins ({bins}), got {psi_bins}")
    if sample_size < bins:
        raise DriftInputError(f"sample_size: must be at least bins ({bins}), got {sample_size}")
    read = chunk_source(data)
    excluded = set(exclude)
    wanted_names = None if features is None else set(features)

    def wanted(name: str) -> bool:
        return name not in excluded and (wanted_names is None or name in wanted_names)

    scans, rows = _first_pass(read, wanted, categorical, sample_size, seed)
    if features is not None:
        absent = [n for n in features if n not in scans]
        if absent:
            raise DriftInputError(
                f"features: {absent} are not columns of the training data ({list(scans)[:10]})"
            )
    names = list(features) if features is not None else list(scans)
    if not names:
        raise DriftInputError("baseline: the training data has no columns")
    _check_sizes({}, rows, psi_bins)  # a 5-row reference fails here, before the second pass
    profiles = _second_pass(read, [scans[n] for n in names], bins, max_categories, max_invalid_fraction)
    _check_sizes(profiles, rows, psi_bins)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return BaselineProfile(
        features=profiles,
        rows=rows,
        model_version=model_version,
        psi_bins=psi_bins,
        created_at=created,
        source=source,
    )
