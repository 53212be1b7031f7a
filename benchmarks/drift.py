"""Drift check throughput: our streaming check against scipy's ks_2samp loop and Evidently.

1,000,000 rows x 20 numeric features, the baseline (of another 1,000,000 rows) prebuilt. Prints
seconds for our check, for ``scipy.stats.ks_2samp`` over the 20 features, and for Evidently's
``DataDriftPreset`` when an interpreter with Evidently is named by ``EVIDENTLY_PYTHON`` (it is not
a dependency: install it in a throwaway venv), each as a ratio to ours, plus our check's peak
memory against one input chunk. Goals: at least 5x faster than the scipy loop; peak memory under
2x one chunk. Exits 0 either way.

    python benchmarks/drift.py [--rows 1000000] [--features 20] [--chunk-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

from airflow_dl_provider.drift import build_baseline, check_drift

SPEED_GOAL = 5.0
MEMORY_GOAL = 2.0
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


def make_data(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current samples; every fourth feature of the current one has a mean shift of 0.3 sd."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(rows, features))
    current = rng.normal(size=(rows, features))
    current[:, ::4] += 0.3
    # Column-major, so a chunk's columns are contiguous, as a reader's are.
    return reference, np.asfortranarray(current)


def chunks(data: np.ndarray, chunk_rows: int, copy: bool) -> Iterator[dict[str, np.ndarray]]:
    """Column chunks as a reader yields them; ``copy`` makes each one a fresh allocation."""
    for start in range(0, data.shape[0], chunk_rows):
        block = data[start : start + chunk_rows]
        yield {f"f{i}": (block[:, i].copy() if copy else block[:, i]) for i in range(data.shape[1])}


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
        return (
            None,
            f"did not finish within {EVIDENTLY_TIMEOUT_S} s",
        )
    except OSError as err:
        return None, f"cannot run {python}: {err.strerror}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"Evidently failed: {last}"
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]), ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from scipy import stats

    reference, current = make_data(args.rows, args.features, args.seed)
    names = [f"f{i}" for i in range(args.features)]
    start = time.perf_counter()
    profile = build_baseline({name: reference[:, i] for i, name in enumerate(names)})
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    ours = check_drift(profile, chunks(current, args.chunk_rows, copy=False))
    ours_s = time.perf_counter() - start

    columns_ref = [np.ascontiguousarray(reference[:, i]) for i in range(args.features)]
    columns_cur = [np.ascontiguousarray(current[:, i]) for i in range(args.features)]
    start = time.perf_counter()
    exact = [stats.ks_2samp(r, c) for r, c in zip(columns_ref, columns_cur, strict=False)]
    scipy_s = time.perf_counter() - start

    worst = max(
        abs(ours.features[n].scores["ks_statistic"] - e.statistic) for n, e in zip(names, exact, strict=False)
    )  # type: ignore[operator]

    # Memory: chunks are fresh copies here, so the peak includes one chunk, as reading a file would.
    chunk_bytes = args.chunk_rows * args.features * 8
    tracemalloc.start()
    check_drift(profile, chunks(current, args.chunk_rows, copy=True))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    evidently_s, reason = run_evidently(args.rows, args.features, args.seed)

    print(
        f"drift check: {args.rows:,} rows x {args.features} numeric features, chunks of {args.chunk_rows:,} rows"
    )
    print(f"baseline build (not timed below): {build_s:.2f} s for {args.rows:,} reference rows")
    print(f"ours (streaming, {profile.features[names[0]].edges.size} bins): {ours_s:.2f} s")
    print(
        f"scipy ks_2samp loop:       {scipy_s:.2f} s   ratio scipy/ours = {scipy_s / ours_s:.1f}x (goal >= {SPEED_GOAL:g}x)"
    )
    if evidently_s is not None:
        print(
            f"evidently DataDriftPreset: {evidently_s:.2f} s   ratio evidently/ours = {evidently_s / ours_s:.1f}x"
        )
    else:
        bound = (
            f"; ratio evidently/ours > {EVIDENTLY_TIMEOUT_S / ours_s:.0f}x"
            if "did not finish" in reason
            else ""
        )
        print(f"evidently DataDriftPreset: skipped ({reason}){bound}")
    print(f"max |KS ours - KS scipy| over features: {worst:.5f} (goal <= 0.005)")
    print(
        f"peak memory of our check: {peak / 2**20:.1f} MiB; one input chunk: {chunk_bytes / 2**20:.1f} MiB; "
        f"ratio {peak / chunk_bytes:.2f}x (goal < {MEMORY_GOAL:g}x); whole data set {current.nbytes / 2**20:.0f} MiB"
    )
    print(f"features drifted: {ours.features_drifted}")
    speed_ok = scipy_s / ours_s >= SPEED_GOAL
    memory_ok = peak / chunk_bytes < MEMORY_GOAL
    print(
        f"{'PASS' if speed_ok else 'MISS'} speed (scipy/ours >= {SPEED_GOAL:g}x); "
        f"{'PASS' if memory_ok else 'MISS'} memory (peak < {MEMORY_GOAL:g}x one chunk); "
        f"{'PASS' if worst <= 0.005 else 'MISS'} KS accuracy (<= 0.005)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
