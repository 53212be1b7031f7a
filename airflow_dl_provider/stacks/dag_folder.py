"""The ``dags/`` folder MWAA syncs, with the training code its pipeline configs point at.

MWAA copies the S3 ``dags/`` prefix to ``/usr/local/airflow/dags`` and nothing beside it, so a
config's ``training.source_dir: ../../docker/training`` points at nothing there and its DAG fails
to import. Each local ``source_dir`` outside the DAG folder is copied to
``dags/training_code/<name>``, and the packaged config's ``source_dir`` is rewritten to that copy,
relative to the config file (which is what it resolves against). ``.airflowignore`` keeps the DAG
processor out of the copied code.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.stacks.render import StackError

TRAINING_CODE_DIR = "training_code"
# Copied code is Python the DAG processor must not parse; one plain name means the same in
# Airflow 2's regexp and Airflow 3's glob .airflowignore syntax.
_IGNORE_LINE = TRAINING_CODE_DIR
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


def _pipeline_yaml(path: Path) -> dict[str, Any] | None:
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, ValueError, UnicodeDecodeError):
        return None  # not a pipeline config; the DAG file's own load reports a broken one
    if isinstance(raw, dict) and "pipeline" in raw and isinstance(raw.get("training"), dict):
        return raw
    return None


def _local_source_dir(config: Path) -> Path | None:
    """The local directory a pipeline config's ``training.source_dir`` resolves to, if it has one."""
    from airflow_dl_provider.pipelines.config import load_config

    try:
        source = load_config(config).training.source_dir
    except PipelineConfigError as err:
        raise StackError(f"--dags-folder: {err}") from None
    if source is None or "://" in source or "{{" in source:
        return None
    return Path(source)


def _rewrite_source_dir(text: str, old: str, new: str) -> str | None:
    """``text`` with the ``source_dir: <old>`` line pointing at ``new``; comments and layout kept."""
    line = re.compile(
        r"^(?P<key>\s*source_dir:\s*)(?P<q>[\"']?)" + re.escape(old) + r"(?P=q)(?P<rest>\s*(#.*)?)$",
        re.MULTILINE,
    )
    rewritten, count = line.subn(lambda m: f"{m['key']}{m['q']}{new}{m['q']}{m['rest']}", text)
    return rewritten if count else None


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def package_dags(dags_dir: Path, out: Path) -> list[str]:
    """Copy ``dags_dir`` to ``out`` with the training code its configs need; return what was brought in.

    :return: ``training_code/<name>`` folders (relative to ``out``) copied from outside ``dags_dir``.
    """
    dags_dir = dags_dir.resolve()
    if not dags_dir.is_dir():
        raise StackError(f"--dags-folder: {dags_dir} is not a directory; pass the folder of DAG files")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(dags_dir, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))

    brought: dict[Path, str] = {}
    for packaged in sorted([*out.rglob("*.yaml"), *out.rglob("*.yml")]):
        if TRAINING_CODE_DIR in packaged.relative_to(out).parts:
            continue
        original = dags_dir / packaged.relative_to(out)
        raw = _pipeline_yaml(original)
        source = _local_source_dir(original) if raw is not None else None
        if raw is None or source is None or source.is_relative_to(dags_dir):
            continue  # inside the DAG folder: copied with it, and the relative path still holds
        if not source.is_dir():
            raise StackError(
                f"--dags-folder: {original}: training.source_dir: {source} is not a directory; "
                "point it at the folder holding the entry point"
            )
        if source not in brought:
            brought[source] = _unique(source.name, set(brought.values()))
            shutil.copytree(source, out / TRAINING_CODE_DIR / brought[source], ignore=_COPY_IGNORE)
        target = os.path.relpath(out / TRAINING_CODE_DIR / brought[source], packaged.parent)
        text = packaged.read_text()
        rewritten = _rewrite_source_dir(text, str(raw["training"]["source_dir"]), target)
        if rewritten is None:  # not on a line of its own (flow style): write the mapping back
            raw["training"]["source_dir"] = target
            rewritten = "# Rewritten by 'airflow-dl stack package'\n" + yaml.safe_dump(raw, sort_keys=False)
        packaged.write_text(rewritten)

    if brought:
        ignore = out / ".airflowignore"
        lines = ignore.read_text().splitlines() if ignore.is_file() else []
        if _IGNORE_LINE not in lines:
            ignore.write_text("\n".join([*lines, _IGNORE_LINE, ""]))
    return [f"{TRAINING_CODE_DIR}/{name}" for name in brought.values()]
