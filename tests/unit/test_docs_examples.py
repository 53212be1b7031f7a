"""The docs' example DAGs are real DAGs: each imports cleanly and lightly (docs include them verbatim)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_parse_light import _heavy_modules_loaded_by

EXAMPLES = sorted((Path(__file__).parents[2] / "docs" / "examples").glob("*.py"))


@pytest.mark.parametrize("dag_file", EXAMPLES, ids=lambda p: p.name)
def test_example_dag_imports_with_its_tasks(dag_file: Path) -> None:
    from tests.integration.test_dags import _dagbag

    bag = _dagbag(dag_file)

    assert bag.import_errors == {}
    assert bag.dags, f"{dag_file.name} defines no DAG"
    for dag in bag.dags.values():
        assert dag.tasks
    assert "# [START " in dag_file.read_text() and "# [END " in dag_file.read_text()


@pytest.mark.parametrize("dag_file", EXAMPLES, ids=lambda p: p.name)
def test_example_dag_imports_nothing_heavy(dag_file: Path) -> None:
    assert _heavy_modules_loaded_by(dag_file)["loaded"] == []
