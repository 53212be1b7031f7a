"""Secrets: no credential, token or connection password reaches a task log, an XCom or a rendered template.

A DAG runs with ``dag.test()`` on the local backend. One task's connection carries a random access
key, secret key and session token; another uses the local backend's placeholder keys. Everything a
user or a reader of the run can see is scanned for the random values: what the tasks logged, the
console output, every XCom and rendered template field of the run, the job records and runner logs
in the local home, and the job's CloudWatch log events. Airflow's masker is kept from hiding the
random values, so one our code logged would be found rather than starred out.

The placeholders are not a common word: the masker, which hides a connection's password wherever it
appears, leaves "local" readable in the placeholder task's log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import airflow.settings
import pytest

# At module level, before any fixture runs: the first import of Airflow sets up its logging, which
# must happen before ``task_log`` starts capturing.
import airflow_dl_provider.operators.training  # noqa: F401
from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS

if TYPE_CHECKING:
    from pathlib import Path

DAG_FILE = """
from __future__ import annotations

import datetime

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow.models.dag import DAG

from airflow_dl_provider.operators.training import DistributedTrainingOperator

COMMON = dict(
    role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
    output_path="{output}",
    channels={{"train": "{train}"}},
    entry_point="train.py",
    source_dir="{source_dir}",
    instance_type="ml.m5.large",
    max_runtime_seconds=120,
    poll_interval=1,
    job_name_prefix="{{{{ dag.dag_id }}}}",
    hyperparameters={{"run": "{{{{ run_id }}}}", "connection": "{{{{ task.aws_conn_id }}}}"}},
)

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    DistributedTrainingOperator(task_id="with_secret_keys", aws_conn_id="aws_secret", **COMMON)
    DistributedTrainingOperator(task_id="with_placeholder_keys", aws_conn_id="aws_default", **COMMON)
"""

SCRIPT = """\
import os
print("training on the local backend with", len(os.environ), "environment variables", flush=True)
"""


def _masker_blind_to(monkeypatch: pytest.MonkeyPatch, values: set[str]) -> set[str]:
    """Keep Airflow's secrets masker from hiding ``values``; return what it was asked to hide otherwise."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    asked: set[str] = set()
    add_mask = SecretsMasker.add_mask

    def spied(self: Any, secret: Any, name: str | None = None) -> None:
        if isinstance(secret, str):
            if secret in values:
                return
            asked.add(secret)
        add_mask(self, secret, name)

    monkeypatch.setattr(SecretsMasker, "add_mask", spied)
    return asked


def _run_rows(dag_id: str) -> dict[str, list[str]]:
    """Every XCom value and rendered template field the run left in the metadata DB, as text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel as XCom  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom  # type: ignore[no-redef]

    with create_session() as session:
        xcoms = session.query(XCom).filter(XCom.dag_id == dag_id).all()
        rendered = (
            session.query(RenderedTaskInstanceFields)
            .filter(RenderedTaskInstanceFields.dag_id == dag_id)
            .all()
        )
        return {
            "xcom": [f"{x.task_id}.{x.key}={json.dumps(x.value, default=str)}" for x in xcoms],
            "rendered": [f"{r.task_id}={json.dumps(r.rendered_fields, default=str)}" for r in rendered],
        }


def _home_files(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home)): path.read_text(errors="replace")
        for path in home.rglob("*")
        if path.is_file() and path.suffix in (".json", ".log", "") and path.stat().st_size < 2_000_000
    }


def _job_log_events(logs: Any, dag_id: str) -> list[str]:
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=dag_id.replace("_", "-"))
    return [
        event["message"]
        for stream in streams["logStreams"]
        for event in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_0_secrets_in_task_logs_xcom_rendered_templates_or_job_records(
    local_backend: Any,
    airflow_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    task_log: Any,
    capfd: pytest.CaptureFixture[str],
    counts: Any,
) -> None:
    from tests.integration.test_dags import _dagbag

    key_id = "AKIA" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    token = secrets.token_urlsafe(48)
    # The local backend's connection (tests/conftest.py), with keys and a session token of its own.
    extra = {**json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])["extra"], "aws_session_token": token}
    secret_conn = {"conn_type": "aws", "login": key_id, "password": secret_key, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_SECRET", json.dumps(secret_conn))
    masked = _masker_blind_to(monkeypatch, {key_id, secret_key, token})

    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(SCRIPT)
    local_backend.upload("data/train/part-0.csv", "label,p0\n1,2\n")
    dag_id = f"secrets_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "secrets_dag.py").write_text(
        textwrap.dedent(DAG_FILE).format(
            dag_id=dag_id,
            output=local_backend.uri("output"),
            train=local_backend.uri("data/train/"),
            source_dir=src,
        )
    )
    # On 3.3, dag.test() only runs DAGs inside [core] dags_folder, read into settings at import.
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    dagbag = _dagbag(folder)
    assert dagbag.import_errors == {}

    dag_run = dagbag.dags[dag_id].test()

    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in dag_run.get_task_instances()}
    assert states == {"with_secret_keys": "success", "with_placeholder_keys": "success"}
    console = capfd.readouterr()
    rows = _run_rows(dag_id)
    assert rows["xcom"] and rows["rendered"], rows
    places = {
        "task log": task_log.text,
        "console": console.out + console.err,
        "XCom": "\n".join(rows["xcom"]),
        "rendered templates": "\n".join(rows["rendered"]),
        **_home_files(local_backend.home),
        "CloudWatch job logs": "\n".join(_job_log_events(local_backend.logs, dag_id)),
    }
    # The rendered templates did render, and the job logs were copied: the scan looks at real text.
    assert dag_id.replace("_", "-") in places["rendered templates"] + places["XCom"]
    assert "training on the local backend with" in places["task log"], places["console"][-3000:]
    credentials = {"access key id": key_id, "secret key": secret_key, "session token": token}
    found = {
        name: [where for where, text in places.items() if value in text]
        for name, value in credentials.items()
    }
    assert found == {name: [] for name in credentials}, f"credentials found: {found}"

    # The placeholders' task logged "local" in its own words, unmasked, while the masker hid its password.
    assert LOCAL_CREDENTIALS["password"] in masked, "the masker was at work on the placeholder connection"
    local_lines = [m for m in task_log.messages if "local backend (simulated instances)" in m]
    assert local_lines, "the placeholder task's job log reached its task log"
    assert not re.search(r"\*\*\* backend|\(simulated instances\): \*\*\*", places["console"])
    counts(
        f"3 credentials x {len(places)} places scanned ({sum(len(t) for t in places.values())} characters): "
        "0 found; 'local' unmasked in the placeholder task's log"
    )


def test_the_local_placeholder_keys_mask_no_common_word() -> None:
    """Airflow hides a connection's password wherever it appears in a log: it must not be a word."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    masker = SecretsMasker()
    for value in LOCAL_CREDENTIALS.values():
        masker.add_mask(value)
    sentence = "the local backend runs 2 x ml.m5.large as 2 local process(es) on localhost; key secret id"
    assert masker.redact(sentence) == sentence
    # The probe can fail: a placeholder that is a word, as "local" was, stars it out.
    masker.add_mask("local")
    assert masker.redact(sentence) != sentence


ENV_DUMP = """\
import json, os
with open(os.environ["ENV_DUMP"], "w") as dump:
    json.dump(dict(os.environ), dump)
"""


@pytest.mark.slow
def test_a_local_jobs_processes_never_see_the_connections_keys(
    local_backend: Any, tmp_path: Path, task_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    secret_key = secrets.token_urlsafe(30)
    connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    connection.update(login="AKIA" + secrets.token_hex(8).upper(), password=secret_key)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(ENV_DUMP)
    dump = tmp_path / "env.json"
    local_backend.upload("data/train/part-0.csv", "label,p0\n1,2\n")
    DistributedTrainingOperator(
        task_id="train",
        role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
        output_path=local_backend.uri("output"),
        channels={"train": local_backend.uri("data/train/")},
        entry_point="train.py",
        source_dir=str(src),
        instance_type="ml.m5.large",
        max_runtime_seconds=120,
        poll_interval=1,
        environment={"ENV_DUMP": str(dump)},
    ).execute(task_context("manual__env"))

    environment = json.loads(dump.read_text())
    # Neither AIRFLOW_CONN_AWS_DEFAULT (the whole connection) nor the key pair: the placeholders instead.
    assert [name for name, value in environment.items() if secret_key in value] == []
