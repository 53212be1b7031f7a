"""``local airflow`` seeds the demo config's data: no file where the drift monitor reads the endpoint's capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("watched", [None, "s3://airflow-dl-demo/digits/incoming/"])
def test_seed_puts_the_shifted_batch_only_where_a_file_is_watched(
    s3_endpoint: str, tmp_path: Path, watched: str | None
) -> None:
    import yaml

    from airflow_dl_provider.backends.local import server
    from airflow_dl_provider.local_airflow import seed_demo_data

    raw: dict[str, Any] = yaml.safe_load((REPO / "dags" / "configs" / "digits.yaml").read_text())
    raw["training"]["source_dir"] = str(REPO / "docker" / "training")
    if watched:
        raw["drift"]["data_uri"] = watched
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "digits.yaml").write_text(yaml.safe_dump(raw))
    written = seed_demo_data(s3_endpoint, tmp_path)

    shifted = [w for w in written if w.startswith("the shifted batch")]
    labeled = "the shifted batch s3://airflow-dl-demo/digits/labeled/batch-1.csv"
    # The labeled copy is retraining's either way; the features only where drift.data_uri points.
    expected = [labeled] if watched is None else [f"the shifted batch {watched}batch-1.csv", labeled]
    assert shifted == expected
    if watched:
        s3 = server.s3_client(s3_endpoint)
        body = s3.get_object(Bucket="airflow-dl-demo", Key="digits/incoming/batch-1.csv")["Body"].read()
        assert body.decode().startswith("p0,p1,")
