"""The human gate on Airflow 3.3, end to end: a run parks at ``approve``, a person answers through the
HITL API, and the answer becomes the model package's status; a rejection skips the deploy.

The run is ``airflow-dl dag-test`` in its own process; the answer goes through the same function the
Core API's ``PATCH .../hitlDetails`` route runs, on the same metadata database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import types
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.operators.approval import hitl_available

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hitl_available(), reason="human-in-the-loop needs Airflow 3.1+"),
]

DAG_FILE = """
import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_dl_provider.operators.approval import evaluation_summary, human_approval

with DAG("hitl_gate", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) as hitl_gate:
    gate = human_approval(
        task_id="approve",
        model_package_arn={arn!r},
        summary=evaluation_summary({arn!r}, 0.97, min_score=0.9),
        deferrable=False,
        poll_interval=1,
    )
    gate >> EmptyOperator(task_id="deploy")
"""


def _register(local_backend: Any) -> tuple[Any, str]:
    from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook

    conn = SageMakerJobHook(aws_conn_id="aws_default").conn
    conn.create_model_package_group(ModelPackageGroupName="gate")
    container = {
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311",
        "ModelDataUrl": local_backend.uri("models/model.tar.gz"),
    }
    arn = conn.create_model_package(
        ModelPackageGroupName="gate",
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]
    return conn, arn


def _parked_run_id(deadline: float, proc: subprocess.Popen[str]) -> str:
    """The run whose ``approve`` waits for a person, polled until the deadline."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    while time.monotonic() < deadline and proc.poll() is None:
        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id="hitl_gate", task_id="approve", state=TaskInstanceState.AWAITING_INPUT)
                .one_or_none()
            )
            if ti is not None:
                return str(ti.run_id)
        time.sleep(0.5)
    out = proc.communicate(timeout=30)[0] if proc.poll() is not None else ""
    raise AssertionError(f"approve never waited for input; dag-test said: {out[-3000:]}")


def _answer(run_id: str, option: str, reason: str) -> None:
    """What the Required Actions form sends: the Core API's PATCH handler, on the shared database."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    user = types.SimpleNamespace(get_id=lambda: "7", get_name=lambda: "Maria")
    with create_session() as session:
        update_hitl_detail(
            dag_id="hitl_gate",
            dag_run_id=run_id,
            task_id="approve",
            update_hitl_detail_payload=UpdateHITLDetailPayload(
                chosen_options=[option], params_input={"reason": reason}
            ),
            user=user,  # type: ignore[arg-type]
            session=session,
            map_index=-1,
        )


@pytest.mark.timeout(600)
def test_a_person_rejects_in_required_actions_and_nothing_deploys(
    local_backend: Any, airflow_db: Path, tmp_path: Path
) -> None:
    conn, arn = _register(local_backend)
    folder = tmp_path / "dags"
    (folder / "configs").mkdir(parents=True)  # dag-test's DAG folder check: no pipeline configs here
    (folder / "hitl_gate.py").write_text(textwrap.dedent(DAG_FILE.format(arn=arn)))
    results = tmp_path / "results.json"
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    command = [sys.executable, "-m", "airflow_dl_provider.cli", "dag-test", "hitl_gate"]
    proc = subprocess.Popen(
        [*command, "--dags-folder", str(folder), "--results", str(results)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_id = _parked_run_id(time.monotonic() + 300, proc)
        # Parked, the package is still undecided.
        assert conn.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == (
            "PendingManualApproval"
        )
        _answer(run_id, "Reject", "class 8 is confused with 3")
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    run = json.loads(results.read_text())

    assert run["tasks"]["approve"]["state"] == "success", out[-3000:]
    decision = run["tasks"]["approve"]["result"]
    assert decision, out[-6000:]
    assert decision["decision"] == "rejected" and decision["decided_by"] == "Maria"
    assert decision["reason"] == "rejected by Maria in Airflow: class 8 is confused with 3"
    assert run["tasks"]["deploy"]["state"] == "skipped"
    described = conn.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == decision["reason"]
