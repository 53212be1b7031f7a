"""The default thresholds catch moderate shifts, stay quiet without one, and judge only what they can.

Every case draws its own data with its own seed; the thresholds are the shipped defaults unless a
test says otherwise.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from airflow_dl_provider.drift import DriftThresholds, build_baseline, check_drift, report_html
from airflow_dl_provider.drift.baseline import DEFAULT_SAMPLE_SIZE
from airflow_dl_provider.drift.readers import read_csv, read_jsonl, read_parquet
from airflow_dl_provider.drift.statistics import fisher_exact_pvalue
from airflow_dl_provider.exceptions import DriftInputError


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not standard JSON: {name}")


def test_moderate_location_and_scale_shifts_on_150k_rows_and_no_false_alarm() -> None:
    rows = 150_000
    rng = np.random.default_rng(150)
    names = [f"f{i}" for i in range(8)]
    profile = build_baseline({n: rng.normal(size=rows) for n in names} | {"u": rng.uniform(size=rows)})
    for seed in range(3):
        rng = np.random.default_rng(1_500 + seed)
        current = {n: rng.normal(size=rows) for n in names} | {"u": rng.uniform(size=rows)}
        quiet = check_drift(profile, current)
        assert quiet.features_drifted == [], (seed, quiet.summary())
        current["f0"] = rng.normal(size=rows) + 0.15  # a 0.15-sd location shift
        current["f1"] = rng.normal(size=rows) * 1.3  # a 1.3x scale change
        current["u"] = rng.uniform(size=rows) + 0.15 * math.sqrt(1 / 12)  # KS alone (0.043) misses it
        shifted = check_drift(profile, current)
        assert shifted.features_drifted == ["f0", "f1", "u"], (seed, shifted.summary())
    assert any(r.startswith("wasserstein_normed") for r in shifted.features["u"].reasons)


def test_ten_rows_without_drift_are_too_few_rows_not_drift() -> None:
    rng = np.random.default_rng(10)
    profile = build_baseline(
        {"x": rng.normal(size=5_000), "y": rng.gamma(2.0, size=5_000), "c": rng.choice(["a", "b"], 5_000)},
        categorical=["c"],
    )
    batch = {"x": rng.normal(size=10), "y": rng.gamma(2.0, size=10), "c": rng.choice(["a", "b"], 10)}

    result = check_drift(profile, batch)

    assert not result.drifted
    assert result.features_too_few_rows == ["x", "y", "c"]
    feature = result.features["x"]
    assert feature.status == "too few rows" and not feature.drifted
    assert feature.scores["psi"] > 0.2  # the empty-bin floor that used to flag it
    assert "too few rows: 10 values, min_rows 100" in feature.note
    page = report_html(result)
    assert "too few rows" in page and ">drifted<" not in page
    # Lowering min_rows lets the tests run; their significance gate still keeps 10 rows quiet.
    assert not check_drift(profile, batch, DriftThresholds(min_rows=5)).drifted


def test_a_five_row_reference_is_refused() -> None:
    with pytest.raises(DriftInputError) as err:
        build_baseline({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "data: the training data has 5 rows; a baseline needs at least 50 (5 per PSI bin, psi_bins=10): "
        "build it from more rows or lower psi_bins"
    )
    with pytest.raises(DriftInputError, match=r"^features: numeric feature 'x' has 10 values in 200 rows"):
        build_baseline({"x": [1.0] * 10 + [math.nan] * 190, "y": list(range(200))})


def test_a_column_entirely_missing_is_drift() -> None:
    rng = np.random.default_rng(20)
    profile = build_baseline({"x": rng.normal(size=5_000), "y": rng.normal(size=5_000)})
    empty = check_drift(profile, {"x": np.full(2_000, math.nan), "y": rng.normal(size=2_000)})
    assert empty.features_drifted == ["x"]
    assert empty.features["x"].reasons[0].startswith("missing_rate 1 (baseline 0) changed by 1 >= 0.05, p ")
    absent = check_drift(profile, {"y": rng.normal(size=2_000)})
    assert absent.features_drifted == ["x"]
    assert absent.features["x"].reasons[0] == "absent from the data (all 2000 rows)"
    assert absent.drifted


def test_a_change_in_missing_rate_is_scored_and_flags() -> None:
    rng = np.random.default_rng(21)

    def sparse(rows: int, rate: float) -> np.ndarray:
        values = rng.normal(size=rows)
        values[rng.random(rows) < rate] = math.nan
        return values

    profile = build_baseline({"x": sparse(50_000, 0.02)})
    same = check_drift(profile, {"x": sparse(20_000, 0.02)}).features["x"]
    assert not same.drifted
    assert abs(same.scores["missing_rate_change"]) < 0.01  # type: ignore[arg-type]
    more = check_drift(profile, {"x": sparse(20_000, 0.10)}).features["x"]
    assert more.drifted
    assert more.scores["missing_rate"] == pytest.approx(0.10, abs=0.01)
    assert more.scores["missing_rate_change"] == pytest.approx(0.08, abs=0.01)
    assert more.reasons[0].startswith("missing_rate")


def test_fisher_pvalue_matches_scipy() -> None:
    for table in (
        [[147_000, 3_000], [146_500, 3_500]],
        [[5_000, 0], [0, 10]],
        [[100, 5], [9, 1]],
        [[98, 2], [8, 2]],
    ):
        (a, b), (c, d) = table
        assert fisher_exact_pvalue(a, b, c, d) == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-6)
    assert fisher_exact_pvalue(10, 0, 10, 0) == 1.0


def _jsonl(rows: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode())


def test_integer_coded_categories_read_the_same_from_csv_jsonl_and_parquet() -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(30)
    codes = rng.choice([1, 2, 3], size=3_000, p=[0.5, 0.3, 0.2])
    csv_body = (
        "code,x\n" + "".join(f"{c},{v:.4f}\n" for c, v in zip(codes, rng.normal(size=3_000), strict=True))
    ).encode()
    profile = build_baseline(lambda: read_csv(io.BytesIO(csv_body)), categorical=["code"])
    assert sorted(profile.features["code"].categories) == ["1", "2", "3"]  # type: ignore[union-attr]

    current = rng.choice([1, 2, 3], size=2_000, p=[0.5, 0.3, 0.2])
    as_floats = [{"code": float(c), "x": float(rng.normal())} for c in current]  # 1.0, as JSON writers do
    parquet = io.BytesIO()
    pq.write_table(pa.table({"code": current.astype(np.int64), "x": rng.normal(size=2_000)}), parquet)
    parquet.seek(0)
    csv_floats = ("code,x\n" + "".join(f"{float(c)},0.1\n" for c in current)).encode()
    for chunks in (
        read_jsonl(_jsonl(as_floats)),
        read_parquet(parquet),
        read_csv(io.BytesIO(csv_floats), types={"code": "categorical", "x": "numeric"}),
    ):
        feature = check_drift(profile, chunks, features=["code"]).features["code"]
        assert feature.scores["new_values"] == 0.0
        assert feature.scores["total_variation"] < 0.05  # type: ignore[operator]
        assert not feature.drifted


def test_values_near_1e300_keep_the_baseline_finite_and_standard_json() -> None:
    rng = np.random.default_rng(40)
    huge = rng.uniform(1e300, 1.7e308, size=2_000)
    profile = build_baseline({"huge": huge, "signed": np.concatenate([huge[:1_000], -huge[1_000:]])})
    text = profile.to_json()
    data = json.loads(text, parse_constant=_refuse_constant)  # no Infinity, no NaN
    spec = data["features"]["huge"]
    assert spec["mean"] == pytest.approx(float(np.mean(huge / 1e300)) * 1e300, rel=1e-9)
    assert spec["std"] == pytest.approx(float(np.std(huge / 1e300)) * 1e300, rel=1e-6)
    assert all(math.isfinite(v) for v in spec["means"])
    result = check_drift(profile, {"huge": rng.uniform(1e300, 1.7e308, 1_000), "signed": -huge[:1_000]})
    assert result.features_drifted == ["signed"]
    assert json.loads(json.dumps(result.summary()), parse_constant=_refuse_constant)


def test_unseen_values_are_new_even_with_an_other_bucket() -> None:
    rng = np.random.default_rng(50)
    head = [f"top{i}" for i in range(5)]
    tail = [f"rare{i}" for i in range(400)]
    reference = np.concatenate([rng.choice(head, 8_000), rng.choice(tail, 2_000)])
    profile = build_baseline({"c": reference}, max_categories=5)
    categories = profile.features["c"].categories  # type: ignore[union-attr]
    assert categories[-1] == "__other__" and len(categories) == 6

    seen_tail = sorted(set(reference[8_000:].tolist()))  # the tail values the training data really had
    known = check_drift(profile, {"c": np.concatenate([rng.choice(head, 800), rng.choice(seen_tail, 200)])})
    assert known.features["c"].scores["new_values"] == 0.0  # tail values are the training data's
    assert not known.drifted
    unseen = np.concatenate([rng.choice(head, 800), [f"never{i}" for i in range(200)]])
    fresh = check_drift(profile, {"c": unseen}).features["c"]
    assert fresh.scores["new_values"] == pytest.approx(0.2)
    assert fresh.drifted


def test_ks_error_bound_holds_when_the_data_outgrows_the_sample() -> None:
    rng = np.random.default_rng(60)
    reference = rng.standard_t(3, size=60_000)
    chunks = [{"x": part} for part in np.array_split(reference, 12)]
    profile = build_baseline(chunks, bins=200, sample_size=10_000)  # 50 sample values per bin
    feature = profile.features["x"]
    assert feature.ks_error_bound < 2 / 200  # the module's bound: (1 + 0.86) / bins
    assert int(feature.counts.sum()) == 60_000  # pass 2 counts every value, not the sample
    for shift in (0.0, 0.05, 0.3):
        current = rng.standard_t(3, size=20_000) + shift
        ours = check_drift(profile, {"x": current}).features["x"].scores["ks_statistic"]
        exact = stats.ks_2samp(reference, current).statistic
        assert exact - feature.ks_error_bound - 1e-12 <= ours <= exact + 1e-12  # type: ignore[operator]


def test_baseline_build_memory_is_flat_in_rows() -> None:
    import tracemalloc

    def peak(parts: int) -> int:
        rng = np.random.default_rng(70)

        def chunks() -> Any:
            for _ in range(parts):
                yield {"x": rng.normal(size=20_000), "y": rng.gamma(2.0, size=20_000)}

        tracemalloc.start()
        build_baseline(chunks, bins=100, sample_size=5_000)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(40) < 1.3 * peak(10)  # 4x the rows, about the same memory
    assert DEFAULT_SAMPLE_SIZE == 100_000


def test_a_one_shot_iterator_is_refused_with_the_fix() -> None:
    rng = np.random.default_rng(80)
    with pytest.raises(
        DriftInputError, match=r"a one-shot iterator cannot be read twice .* pass a list of chunks"
    ):
        build_baseline(iter([{"x": rng.normal(size=100)}]))
