"""How long ``make demo`` takes, against the same training runs started directly, in one run.

**Ours:** ``airflow-dl demo`` (what ``make demo`` runs), wall clock, in a fresh home.

**Baseline:** the demo's fits without Airflow, the local backend or S3: the digits trainer
(``docker/training/train.py``) run as two processes over gloo, with the environment and argv the
local backend's training toolkit builds (:func:`~airflow_dl_provider.backends.local.training.host_environment`),
for each fit the demo makes: the untuned model, the six grid trials of the tuning job (two at a
time, as ``max_parallel_jobs: 2``) and the retrain's challenger, each a fresh ``python train.py``.

Prints both, the ratio, the load average before and after (the machine may be shared), and
``PASS``/``MISS`` against the goal: the demo under 150 s. Exits 0 whatever it measures.

    .venv/bin/python benchmarks/demo_time.py              # demo + baseline (about 3-4 minutes on 2 cores)
    .venv/bin/python benchmarks/demo_time.py --baseline   # the baseline alone
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT_DIR = REPO / "docker" / "training"
GOAL_SECONDS = 150.0
STATIC = {"epochs": 30, "lr": 0.1, "hidden": 128}  # dags/configs/digits.yaml, training.hyperparameters
GRID = {"lr": [0.05, 0.1, 0.2], "hidden": [128, 256]}  # ... tuning.parameter_ranges
HOSTS = ["algo-1", "algo-2"]  # ... training.instance_count: 2


def _splits(root: Path) -> dict[str, Path]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data.astype(int), digits.target.astype(int)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.15, stratify=y_rest, random_state=0
    )
    channels = {}
    for name, (features, labels) in {
        "train": (x_train, y_train), "validation": (x_val, y_val), "test": (x_test, y_test)
    }.items():  # fmt: skip
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["label", *[f"p{i}" for i in range(64)]])
        writer.writerows([int(label), *map(int, row)] for label, row in zip(labels, features, strict=True))
        channels[name] = root / "data" / name
        channels[name].mkdir(parents=True)
        (channels[name] / "part-0.csv").write_text(text.getvalue())
    return channels


def _fit(root: Path, hps: dict[str, object], channels: dict[str, Path]) -> list[subprocess.Popen[bytes]]:
    """Start one fit: two host processes, as the local backend starts a 2-instance job's hosts."""
    from airflow_dl_provider.backends.local.processes import free_port
    from airflow_dl_provider.backends.local.training import cmd_args, host_environment, user_hyperparameters

    request = {
        "ResourceConfig": {"InstanceType": "ml.p3dn.24xlarge", "InstanceCount": len(HOSTS)},
        "InputDataConfig": [{"ChannelName": name} for name in channels],
    }
    hps = {**hps, "sagemaker_program": "train.py"}
    port = free_port()
    procs = []
    for rank, host in enumerate(HOSTS):
        host_root = root / host
        env = {**os.environ, **host_environment(request, hps, HOSTS, rank, host_root, port)}
        env.update({f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()})
        procs.append(
            subprocess.Popen(
                [sys.executable, "train.py", *cmd_args(user_hyperparameters(hps))],
                cwd=SCRIPT_DIR,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


def _wait(procs: list[subprocess.Popen[bytes]]) -> None:
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a baseline fit failed (exit codes {codes})")


def baseline() -> float:
    """Seconds for the demo's eight fits, started directly."""
    with tempfile.TemporaryDirectory(prefix="demo-baseline-") as tmp:
        root = Path(tmp)
        channels = _splits(root)
        started = time.monotonic()
        _wait(_fit(root / "train", STATIC, channels))  # the untuned model
        trials = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
        for i in range(0, len(trials), 2):  # two trials at a time
            running = [
                _fit(root / f"trial-{i + j}", {**STATIC, **t}, channels)
                for j, t in enumerate(trials[i : i + 2])
            ]
            for procs in running:
                _wait(procs)
        _wait(_fit(root / "challenger", STATIC, channels))  # the retrain
        return time.monotonic() - started


def demo(log: Path | None = None) -> tuple[float, int, str]:
    """Seconds ``airflow-dl demo`` took, its exit code and its last lines (all of them to ``log``)."""
    with tempfile.TemporaryDirectory(prefix="demo-time-") as home:
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "airflow_dl_provider.cli", "demo", "--home", home],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        if log is not None:
            log.write_text(run.stdout + run.stderr)
        return seconds, run.returncode, "\n".join(run.stdout.splitlines()[-6:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="measure the baseline only")
    parser.add_argument("--log", type=Path, default=None, help="write the demo's whole output here")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    base = baseline()
    print(f"baseline: the demo's 8 fits (2 hosts each) started directly: {base:6.1f} s")
    if args.baseline:
        return 0
    ours, code, tail = demo(args.log)
    load_after = os.getloadavg()
    print(f"demo:     airflow-dl demo (exit {code}):                         {ours:6.1f} s")
    print(f"ratio demo / baseline: {ours / base:.2f}")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after} on {os.cpu_count()} CPUs")
    verdict = "PASS" if code == 0 and ours < GOAL_SECONDS else "MISS"
    print(f"{verdict}: goal demo < {GOAL_SECONDS:.0f} s\n{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
