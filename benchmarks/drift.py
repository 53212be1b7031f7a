"""Drift check speed and memory, in memory and on the real path (files), each as a ratio measured in the same run.

Data: ``--rows`` reference rows (the baseline, built before timing) and ``--rows`` current rows of
``--features`` normal features, every fourth shifted by 0.3 sd, checked in chunks of ``--chunk-rows``.
Each timing is the best of ``--repeat`` runs, ours and the yardstick interleaved (the machine may be
busy). Ratios and goals:

- in memory, vs ``scipy.stats.ks_2samp`` over every feature: goal >= 10x faster;
- in memory, vs one ``np.searchsorted`` of every value into the baseline's edges (the least any
  binned check does): goal <= 1.5x its time;
- from CSV, vs ``pandas.read_csv`` plus one ``np.searchsorted`` pass (the floor of that path):
  goal <= 1.5x its time;
- from CSV, vs ``pandas.read_csv`` in chunks plus the same check: goal <= 1.5x its time (and the
  same for Parquet, vs ``pandas.read_parquet``, and JSON Lines, vs ``pandas.read_json`` in chunks,
  on ``--file-rows`` rows);
- the baseline build from CSV, peak memory in a fresh process, vs the CSV's size: goal <= 3x, and
  at a quarter of the rows about the same (flat as rows grow);
- Evidently's ``DataDriftPreset`` when ``EVIDENTLY_PYTHON`` names an interpreter that has it (not a
  dependency: install it in a throwaway venv), as an optional row.

Exits 0 either way.

    python benchmarks/drift.py [--rows 1000000] [--features 20] [--file-rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_dl_provider.drift import build_baseline, check_drift, read_csv, read_jsonl, read_parquet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SCIPY_GOAL = 10.0
READER_GOAL = 1.5
FLOOR_GOAL = 1.5
MEMORY_GOAL = 3.0
EVIDENTLY_TIMEOUT_S = 60

EVIDENTLY_PROBE = """
import json, sys, time
import numpy as np
import pandas as pd

from evidently import Report
from evidently.presets import DataDriftPreset

rows, features, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
names = [f"f{i}" for i in range(features)]
ref = pd.DataFrame(rng.normal(size=(rows, features)), columns=names)
cur = pd.DataFrame(rng.normal(size=(rows, features)), columns=names)
cur.iloc[:, ::4] += 0.3
start = time.perf_counter()
Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

# A fresh interpreter builds a baseline from a CSV and reports its peak memory above what it held
# after the imports, so one measurement cannot inherit another's heap. The peak is VmHWM, which exec
# resets; ru_maxrss would still count the pages of the (large) parent that forked it.
BUILD_PROBE = """
import json, sys
import numpy as np, pyarrow, pyarrow.csv, pyarrow.compute
from airflow_dl_provider.drift import build_baseline, read_csv

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

before = status("VmRSS")
path = sys.argv[1]

def chunks():
    with open(path, "rb") as stream:
        yield from read_csv(stream)

profile = build_baseline(chunks)
print(json.dumps({"before": before, "peak": status("VmHWM"), "rows": profile.rows}))
"""


def make_data(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current samples; every fourth feature of the current one has a mean shift of 0.3 sd."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(rows, features))
    current = rng.normal(size=(rows, features))
    current[:, ::4] += 0.3
    # Column-major, so a chunk's columns are contiguous, as a reader's are.
    return reference, np.asfortranarray(current)


def chunks(data: np.ndarray, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, data.shape[0], chunk_rows):
        block = data[start : start + chunk_rows]
        yield {f"f{i}": block[:, i] for i in range(data.shape[1])}


def best(repeat: int, *runs: Callable[[], Any]) -> list[float]:
    """The fastest of ``repeat`` runs of each callable, interleaved so a busy spell hits all of them."""
    times = [[] for _ in runs]  # type: list[list[float]]
    for _ in range(repeat):
        for slot, run in zip(times, runs, strict=True):
            start = time.perf_counter()
            run()
            slot.append(time.perf_counter() - start)
    return [min(slot) for slot in times]


def run_evidently(rows: int, features: int, seed: int) -> tuple[float | None, str]:
    python = os.environ.get("EVIDENTLY_PYTHON")
    if not python:
        return (
            None,
            "EVIDENTLY_PYTHON is not set (Evidently is not a dependency; point it at a venv that has it)",
        )
    try:
        proc = subprocess.run(
            [python, "-c", EVIDENTLY_PROBE, str(rows), str(features), str(seed)],
            capture_output=True,
            text=True,
            timeout=EVIDENTLY_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {EVIDENTLY_TIMEOUT_S} s"
    except OSError as err:
        return None, f"cannot run {python}: {err.strerror}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"Evidently failed: {last}"
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]), ""


def build_memory(path: Path) -> dict[str, int]:
    proc = subprocess.run(
        [sys.executable, "-c", BUILD_PROBE, str(path)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def write_files(current: np.ndarray, rows: int, directory: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    names = [f"f{i}" for i in range(current.shape[1])]
    table = pa.table({n: current[:rows, i] for i, n in enumerate(names)})
    paths = {f: directory / f"current.{f}" for f in formats}
    if "csv" in paths:
        pcsv.write_csv(table, paths["csv"])
    if "parquet" in paths:
        pq.write_table(table, paths["parquet"], row_group_size=100_000)
    if "jsonl" in paths:
        pd.DataFrame(current[:rows], columns=names).to_json(paths["jsonl"], orient="records", lines=True)
    return paths


def opened(path: Path, reader: Callable[..., Iterator[Any]], **options: Any) -> Iterator[Any]:
    with open(path, "rb") as stream:
        yield from reader(stream, **options)


def file_cases(
    profile: Any, paths: dict[str, Path], chunk_rows: int
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Per file format: (ours, pandas' reader + the same check)."""
    import pandas as pd

    types = {name: feature.kind for name, feature in profile.features.items()}

    def frames(frames: Any) -> Iterator[dict[str, np.ndarray]]:
        for frame in frames:
            yield {c: frame[c].to_numpy() for c in frame.columns}

    def parquet_frames(path: Path) -> Iterator[Any]:
        frame = pd.read_parquet(path)
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start : start + chunk_rows]

    readers: dict[str, tuple[Callable[[Path], Any], Callable[[Path], Any]]] = {
        "csv": (
            lambda p: opened(p, read_csv, chunk_rows=chunk_rows, types=types),
            lambda p: frames(pd.read_csv(p, chunksize=chunk_rows)),
        ),
        "parquet": (
            lambda p: read_parquet(str(p), chunk_rows=chunk_rows),
            lambda p: frames(parquet_frames(p)),
        ),
        "jsonl": (
            lambda p: opened(p, read_jsonl, chunk_rows=chunk_rows),
            lambda p: frames(pd.read_json(p, lines=True, chunksize=chunk_rows)),
        ),
    }
    return {
        name: (
            lambda path=path, ours=readers[name][0]: check_drift(profile, ours(path)),
            lambda path=path, theirs=readers[name][1]: check_drift(profile, theirs(path)),
        )
        for name, path in paths.items()
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument(
        "--file-rows", type=int, default=100_000, help="rows of the Parquet and JSON Lines files"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from scipy import stats

    reference, current = make_data(args.rows, args.features, args.seed)
    names = [f"f{i}" for i in range(args.features)]
    start = time.perf_counter()
    profile = build_baseline({name: reference[:, i] for i, name in enumerate(names)})
    build_s = time.perf_counter() - start
    edges = [profile.features[n].edges for n in names]  # type: ignore[union-attr]
    columns_ref = [np.ascontiguousarray(reference[:, i]) for i in range(args.features)]
    columns_cur = [np.ascontiguousarray(current[:, i]) for i in range(args.features)]

    def floor() -> None:
        for chunk in chunks(current, args.chunk_rows):
            for name, edge in zip(names, edges, strict=True):
                np.searchsorted(edge, chunk[name], side="left")

    ours = check_drift(profile, chunks(current, args.chunk_rows))
    ours_s, scipy_s, floor_s = best(
        args.repeat,
        lambda: check_drift(profile, chunks(current, args.chunk_rows)),
        lambda: [stats.ks_2samp(r, c) for r, c in zip(columns_ref, columns_cur, strict=True)],
        floor,
    )
    exact = [stats.ks_2samp(r, c).statistic for r, c in zip(columns_ref, columns_cur, strict=True)]
    worst = max(
        abs(float(ours.features[n].scores["ks_statistic"] or 0) - e)
        for n, e in zip(names, exact, strict=True)
    )

    file_rows = min(args.file_rows, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        full = write_files(current, args.rows, directory / "full", ("csv",))
        import pandas as pd

        def csv_floor() -> None:  # pandas.read_csv plus one searchsorted pass: a binned check's least
            for frame in pd.read_csv(full["csv"], chunksize=args.chunk_rows):
                for name, edge in zip(names, edges, strict=True):
                    np.searchsorted(edge, frame[name].to_numpy(), side="left")

        csv_ours, csv_pandas, csv_floor_s = best(
            args.repeat, *file_cases(profile, full, args.chunk_rows)["csv"], csv_floor
        )
        small = write_files(current, file_rows, directory / "small", ("parquet", "jsonl"))
        formats = [
            (name, *best(args.repeat, ours, theirs))
            for name, (ours, theirs) in file_cases(profile, small, args.chunk_rows).items()
        ]
        csv_size = full["csv"].stat().st_size
        memory_full = build_memory(full["csv"])
        quarter = write_files(current, args.rows // 4, directory / "quarter", ("csv",))["csv"]
        quarter_size = quarter.stat().st_size
        memory_quarter = build_memory(quarter)

    evidently_s, reason = run_evidently(args.rows, args.features, args.seed)
    print(
        f"drift check: {args.rows:,} rows x {args.features} numeric features, chunks of {args.chunk_rows:,} rows, best of {args.repeat}"
    )
    print(f"baseline build in memory (not timed below): {build_s:.2f} s for {args.rows:,} reference rows")
    print("\nin memory")
    print(f"  ours (streaming, {edges[0].size} bins):   {ours_s:.3f} s")
    print(
        f"  scipy ks_2samp loop:          {scipy_s:.3f} s   scipy/ours = {scipy_s / ours_s:.1f}x (goal >= {SCIPY_GOAL:g}x)"
    )
    print(
        f"  one searchsorted pass:        {floor_s:.3f} s   ours/floor = {ours_s / floor_s:.2f}x (goal <= {FLOOR_GOAL:g}x)"
    )
    if evidently_s is not None:
        print(
            f"  evidently DataDriftPreset:    {evidently_s:.2f} s   evidently/ours = {evidently_s / ours_s:.1f}x"
        )
    else:
        print(f"  evidently DataDriftPreset:    skipped ({reason})")
    print(f"  max |KS ours - KS scipy| over features: {worst:.5f} (goal <= 0.005)")
    print("\nfrom files (ours: pyarrow readers; yardstick: pandas reader + the same check)")
    print(
        f"  csv      {args.rows:>9,} rows: ours {csv_ours:.3f} s, pandas {csv_pandas:.3f} s, ours/pandas = {csv_ours / csv_pandas:.2f}x (goal <= {READER_GOAL:g}x)"
    )
    print(
        f"  csv      {args.rows:>9,} rows: pandas.read_csv + one searchsorted pass {csv_floor_s:.3f} s, "
        f"ours/that floor = {csv_ours / csv_floor_s:.2f}x (goal <= {FLOOR_GOAL:g}x)"
    )
    for name, ours_t, pandas_t in formats:
        print(
            f"  {name:8s} {file_rows:>9,} rows: ours {ours_t:.3f} s, pandas {pandas_t:.3f} s, ours/pandas = {ours_t / pandas_t:.2f}x"
        )
    full_peak = memory_full["peak"] - memory_full["before"]
    quarter_peak = memory_quarter["peak"] - memory_quarter["before"]
    full_ratio = full_peak / csv_size
    print("\nbaseline build from CSV (two passes), peak memory above the imports, in a fresh process")
    print(
        f"  {args.rows:>9,} rows: {full_peak / 2**20:.0f} MiB for a {csv_size / 2**20:.0f} MiB CSV"
        f" = {full_ratio:.2f}x (goal <= {MEMORY_GOAL:g}x)"
    )
    print(
        f"  {args.rows // 4:>9,} rows: {quarter_peak / 2**20:.0f} MiB for a {quarter_size / 2**20:.0f} MiB CSV"
        f"; 4x the rows costs {full_peak / max(quarter_peak, 1):.2f}x the memory (flat: about 1)"
    )
    print(f"\nfeatures drifted: {ours.features_drifted}")
    checks = [
        (scipy_s / ours_s >= SCIPY_GOAL, "scipy/ours >= 10x"),
        (ours_s / floor_s <= FLOOR_GOAL and csv_ours / csv_floor_s <= FLOOR_GOAL, "ours/floor <= 1.5x"),
        (csv_ours / csv_pandas <= READER_GOAL, "csv ours/pandas <= 1.5x"),
        (all(o / p <= READER_GOAL for _, o, p in formats), "parquet, jsonl ours/pandas <= 1.5x"),
        (full_ratio <= MEMORY_GOAL, "build memory <= 3x the CSV"),
        (worst <= 0.005, "KS accuracy <= 0.005"),
    ]
    print("; ".join(f"{verdict(ok)} {label}" for ok, label in checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
