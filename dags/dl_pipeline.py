"""Deep-learning pipeline DAGs: one per YAML file in ``dags/configs/``.

Each config becomes ``dl_pipeline_<name>`` (prepare data -> distributed training). A config with a
misspelled key fails this file's import with the file, field and fix in the error.
"""

from __future__ import annotations

from pathlib import Path

from airflow_dl_provider.pipelines.loader import dags_from_directory

# [START dl_pipeline_dags]
globals().update(dags_from_directory(Path(__file__).parent / "configs"))
# [END dl_pipeline_dags]
