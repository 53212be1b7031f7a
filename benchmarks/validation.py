"""Data validation throughput: our path (read + check suite + validate + summary) against GX run directly.

1,000,000 CSV rows x 10 columns (ints, floats, a categorical, a label) are written to a temp file
with numpy; a 10-expectation suite is checked on them two ways, each in a fresh interpreter (so
neither inherits the other's caches or heap) that has already imported pandas and Great
Expectations, as a task that validates has:

* ours: the file's bytes through :func:`~airflow_dl_provider.validation.data.read_frame`,
  :func:`~airflow_dl_provider.validation.data.load_expectations` and
  :func:`~airflow_dl_provider.validation.data.validate` (the summary included), as
  ``DataValidationOperator`` runs them after its S3 download;
* direct: ``pandas.read_csv`` on the file, an ephemeral context, the same suite built from
  ``gx.expectations`` classes, ``batch.validate``.

Our path *is* GX under the hood, so the ratio (our rows/s over direct rows/s) is our overhead; goal
>= 0.90. Runs alternate direct/ours ``--repeat`` times; medians are reported, with each side's peak
RSS (Linux ``VmHWM``, reset after the imports) over its RSS after the imports, and the split between
reading the CSV and the rest. Both read with ``read_csv``'s defaults (ours from the downloaded
bytes); on a loaded machine single runs swing by 2x, so compare medians. Exits 0 either way.

    python benchmarks/validation.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL = 0.90

#: Ten expectations over the ten columns; the data is made to pass nine, so the summary has a failure.
SUITE = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "age", "min_value": 18, "max_value": 90},
    },
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0}},
    {
        "type": "expect_column_mean_to_be_between",
        "kwargs": {"column": "score", "min_value": -0.1, "max_value": 0.1},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "region", "value_set": ["n", "s", "e", "w"]},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "label", "value_set": ["cat", "dog", "bird"]},
    },
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "clicks"}},
    {
        "type": "expect_column_max_to_be_between",
        "kwargs": {"column": "ratio", "min_value": 0, "max_value": 1},
    },
    # Fails: 'flag' is 0/1, about half ones.
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "flag", "value_set": [0]}},
]

OURS = """
import json, sys, time
import pandas, great_expectations  # a validating task has these loaded; both paths start after them
from airflow_dl_provider.validation.data import load_expectations, read_frame, validate
path, suite = sys.argv[1], json.loads(sys.argv[2])

def _kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0
try:  # reset the peak (VmHWM) to now, so it measures this path alone, not the imports
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
base = _kib("VmRSS")
start = time.perf_counter()
data = open(path, "rb").read()
frame = read_frame(data, "csv", name=path)
del data
read_s = time.perf_counter() - start
outcome = validate(frame, load_expectations(suite))
summary = outcome.summary
seconds = time.perf_counter() - start
peak = _kib("VmHWM")
print(json.dumps({"seconds": seconds, "read_s": read_s, "rows": summary["rows"], "failed": summary["failed"],
                  "peak_mib": (peak - base) / 1024}))
"""

DIRECT = """
import json, sys, time
import pandas as pd
import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
path, suite_entries = sys.argv[1], json.loads(sys.argv[2])

def _kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0
try:  # reset the peak (VmHWM) to now, so it measures this path alone, not the imports
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
base = _kib("VmRSS")
classes = {
    name: getattr(gx.expectations, "".join(p.title() for p in name.split("_")))
    for name in {e["type"] for e in suite_entries}
}
start = time.perf_counter()
frame = pd.read_csv(path)
read_s = time.perf_counter() - start
context = gx.get_context(mode="ephemeral")
context.variables.progress_bars = ProgressBarsConfig(globally=False)
batch = (
    context.data_sources.add_pandas(name="bench").add_dataframe_asset(name="data")
    .add_batch_definition_whole_dataframe(name="whole").get_batch(batch_parameters={"dataframe": frame})
)
suite = gx.ExpectationSuite(name="bench")
for entry in suite_entries:
    suite.add_expectation(classes[entry["type"]](**entry["kwargs"]))
result = batch.validate(suite)
seconds = time.perf_counter() - start
peak = _kib("VmHWM")
print(json.dumps({"seconds": seconds, "read_s": read_s, "rows": len(frame),
                  "failed": result.statistics["unsuccessful_expectations"], "peak_mib": (peak - base) / 1024}))
"""


def write_csv(path: Path, rows: int, seed: int) -> None:
    """Ten columns: ints, floats, a categorical, a 0/1 flag and a class label."""
    rng = np.random.default_rng(seed)
    columns = {
        "id": np.arange(rows),
        "age": rng.integers(18, 91, rows),
        "income": np.round(rng.lognormal(10, 1, rows), 2),
        "score": np.round(rng.normal(0, 1, rows), 4),
        "ratio": np.round(rng.random(rows), 4),
        "clicks": rng.poisson(3, rows),
        "region": rng.choice(np.array(["n", "s", "e", "w"]), rows),
        "flag": rng.integers(0, 2, rows),
        "weight": np.round(rng.gamma(2.0, 2.0, rows), 3),
        "label": rng.choice(np.array(["cat", "dog", "bird"]), rows, p=[0.5, 0.3, 0.2]),
    }
    text = [",".join(columns)]
    # Formatted a column at a time with numpy, then zipped: far faster than pandas.to_csv here.
    as_text = [
        np.char.mod("%s", values) if values.dtype.kind in "US" else values.astype(str)
        for values in columns.values()
    ]
    text.extend(",".join(fields) for fields in zip(*as_text, strict=True))
    path.write_text("\n".join(text) + "\n")


def run(probe: str, path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(path), json.dumps(SUITE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dl-validation-bench-") as tmp:
        path = Path(tmp) / "data.csv"
        start = time.perf_counter()
        write_csv(path, args.rows, args.seed)
        print(
            f"data: {args.rows:,} rows x 10 columns, {path.stat().st_size / 2**20:.1f} MiB CSV "
            f"(written in {time.perf_counter() - start:.1f} s); suite: {len(SUITE)} expectations"
        )
        ours: list[dict[str, float]] = []
        direct: list[dict[str, float]] = []
        for _ in range(args.repeat):
            direct.append(run(DIRECT, path))
            ours.append(run(OURS, path))

    for side in (ours, direct):
        assert all(r["rows"] == args.rows for r in side), side
    assert {r["failed"] for r in ours + direct} == {1}, "both paths should find the one failing expectation"
    ours_s = statistics.median(r["seconds"] for r in ours)
    direct_s = statistics.median(r["seconds"] for r in direct)
    ratio = (args.rows / ours_s) / (args.rows / direct_s)
    print(
        f"{'path':<8} {'median s':>9} {'min s':>7} {'max s':>7} {'read s':>7} {'rest s':>7} "
        f"{'rows/s':>12} {'peak MiB':>9}"
    )
    for name, side, seconds in (("ours", ours, ours_s), ("direct", direct, direct_s)):
        times = [r["seconds"] for r in side]
        # Where the time goes: reading the CSV, then everything after (suite, context, validate).
        read = statistics.median(r["read_s"] for r in side)
        rest = statistics.median(r["seconds"] - r["read_s"] for r in side)
        peak = statistics.median(r["peak_mib"] for r in side)
        print(
            f"{name:<8} {seconds:>9.2f} {min(times):>7.2f} {max(times):>7.2f} {read:>7.2f} {rest:>7.2f} "
            f"{args.rows / seconds:>12,.0f} {peak:>9.0f}"
        )
    verdict = "PASS" if ratio >= GOAL else "MISS"
    print(f"ratio (ours rows/s / direct rows/s): {ratio:.2f}  goal >= {GOAL:.2f}  {verdict}")


if __name__ == "__main__":
    main()
