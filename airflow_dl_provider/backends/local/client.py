"""A drop-in for boto3's SageMaker client that runs jobs on this machine.

Requests are validated against botocore's service model exactly as for AWS, and so are the responses
this client returns, so code that works here sees the shapes it will see from SageMaker.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
import threading
from functools import partialmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.backends.local import server, warm_pool
from airflow_dl_provider.backends.local.endpoint import (
    DELETING_SECONDS,
    start_server,
    stop_process,
)
from airflow_dl_provider.backends.local.processes import job_environment, process_alive
from airflow_dl_provider.backends.local.resources import ResourceStore, public
from airflow_dl_provider.backends.local.rollout import update_fields
from airflow_dl_provider.backends.local.state import (
    TERMINAL,
    JobStore,
    LocalJob,
    NewJob,
    StatusConflict,
    now_iso,
)
from airflow_dl_provider.backends.local.work import JobOrigin
from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS, public_status, worker
from airflow_dl_provider.jobs.kinds import JOB_KINDS, JobKind
from airflow_dl_provider.validation.requests import output_shape, validate_request, validate_response

ACCOUNT_ID = "123456789012"
DEFAULT_HOME = Path.home() / ".airflow-dl" / "local"


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _service_error(error: dict[str, str], operation: str) -> ClientError:
    """A ``ClientError`` carrying what ``service_behaviour`` says the real service answers."""
    return ClientError({"Error": dict(error)}, operation)


# The Describe call whose not-found answer each resource type gives, whichever call finds it missing.
_DESCRIBE_OF = {
    "model": "DescribeModel",
    "endpoint-config": "DescribeEndpointConfig",
    "endpoint": "DescribeEndpoint",
    "model-package-group": "DescribeModelPackageGroup",
    "model-package": "DescribeModelPackage",
}


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_endpoint(url: str) -> str:
    """``url`` if it is on loopback; the local backend never talks to anything else."""
    if not url or not _is_loopback(url):
        raise ValueError(
            "the local backend needs the connection extra 'endpoint_url' on 127.0.0.1 "
            f"(the embedded S3 server from 'airflow-dl local up'), got {url!r}"
        )
    return url


def _with_datetimes(shape: Any, value: Any) -> Any:
    """Turn the ISO strings of timestamp members back into datetimes, as boto3 returns them."""
    if shape is None:
        return value
    if shape.type_name == "timestamp" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _with_datetimes(shape.members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_with_datetimes(shape.member, v) for v in value]
    return value


class LocalSageMakerClient:
    """SageMaker's create/describe/stop/list calls for the job kinds the local backend can run.

    :param home: where job directories live; every process that shares it sees the same jobs.
    :param endpoint_url: the embedded S3 server (loopback only: no real account is ever touched).
    :param runner_env: environment for the runner process (endpoint, region, local credentials).
    """

    def __init__(self, *, home: Path, endpoint_url: str, region: str, runner_env: dict[str, str]) -> None:
        loopback_endpoint(endpoint_url)
        self.store = JobStore(home)
        self.endpoint_url = endpoint_url
        self.region = region
        self.runner_env = runner_env

    # -- generic calls, bound per kind below --------------------------------------------------------

    def _create(self, key: str, **request: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        validate_request(kind.create_operation, request)
        name = request[kind.name_field]
        arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:{worker(key).ARN_NOUN}/{name.lower()}"
        created_at = now_iso()
        state = {
            kind.name_field: name,
            kind.arn_field: arn,
            kind.status_field: "InProgress",
            "CreationTime": created_at,
            "LastModifiedTime": created_at,  # required by Describe from the first call, runner or not
            **worker(key).initial_state(request, name),
            # Where it runs, for its runner's services; the S3 server's generation: its artifacts go with it.
            **JobOrigin(
                self.store.home, self.endpoint_url, self.region, server.generation(self.store.home)
            ).state(),
        }
        with self.store.creating(key, name, request, state) as created:
            if created is None:
                error = service_behaviour.name_in_use_error(kind.create_operation, kind.noun, arn)
                raise _service_error(error, kind.create_operation)
            self._start_runner(created)
        return {kind.arn_field: arn}

    def _start_runner(self, created: NewJob) -> None:
        """Start the job's runner and hand it the runner lock this process took before the job existed."""
        job, lock = created.job, created.runner_lock
        with open(job.dir / "runner.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow_dl_provider.backends.local.runner", str(job.dir), str(lock)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Never the caller's connections or keys: a job runs with its role's credentials, here the
                # placeholders the embedded server takes (endpoint and region come from runner_env).
                env=job_environment({**os.environ, **self.runner_env}, server.LOCAL_CREDENTIALS),
                pass_fds=(lock,),
                start_new_session=True,  # a killed task must not take the job down with it
            )
        threading.Thread(target=proc.wait, daemon=True).start()  # reap it, no zombie left behind

    def _job(self, kind: JobKind, key: str, name: str, operation: str) -> LocalJob:
        job = self.store.get(key, name)
        if job is None:
            # Per API, as SageMaker answers: DescribeTransformJob's message differs from DescribeTrainingJob's.
            arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:{worker(key).ARN_NOUN}/{name.lower()}"
            raise _service_error(service_behaviour.not_found_error(operation, name, arn), operation)
        return job

    def _lost_artifacts(self, state: dict[str, Any]) -> str:
        """Why the job's artifacts are gone (its S3 server is not the one running now), or ``""``."""
        recorded, current = state.get("_s3_generation"), server.generation(self.store.home)
        if recorded == current:
            return ""
        if current is None:
            why = f"the local S3 server of generation {recorded} is not running"
        else:
            why = f"the local S3 server was restarted (generation {recorded or 'none'} -> {current})"
        return f"InternalServerError: {why}; its artifacts are gone"

    def _settled(self, key: str, job: LocalJob) -> dict[str, Any]:
        """The job's state as Describe, Stop and List see it. Never signals a process.

        A job whose runner is gone (its lock is free) is ended: Stopped if Stop reached it, else
        Failed. A job that ran against an earlier S3 server is reported Failed unless it ended
        otherwise, so a retry starts a new attempt instead of reattaching to vanished artifacts.
        """
        status_field = JOB_KINDS[key].status_field
        state = job.state()
        if state[status_field] not in TERMINAL and not job.runner_alive():
            state = job.end_without_runner(JOB_KINDS[key].noun)
        state = warm_pool.settle(state)
        lost = self._lost_artifacts(state)
        if lost and state[status_field] in ("InProgress", "Stopping", "Completed"):
            state = {**state, status_field: "Failed", "FailureReason": lost}
            if "SecondaryStatus" in state:
                state["SecondaryStatus"] = "Failed"
        return state

    def _describe(self, key: str, **params: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        operation = f"Describe{kind.noun}"
        job = self._job(kind, key, params[kind.name_field], operation)
        state = self._settled(key, job)
        shape = output_shape(operation)
        merged = {**job.request(), **state}
        merged[kind.status_field] = public_status(key, merged[kind.status_field])
        response = {k: _with_datetimes(shape.members[k], v) for k, v in merged.items() if k in shape.members}
        validate_response(operation, response)
        return response

    def _stop(self, key: str, **params: Any) -> dict[str, Any]:
        """Record ``Stopping`` if the job is InProgress (check-and-set); the runner sees it and stops.

        A job that ended first keeps its end, and the call is refused as the service refuses it.
        """
        kind = JOB_KINDS[key]
        operation = f"Stop{kind.noun}"
        job = self._job(kind, key, params[kind.name_field], operation)
        status = self._settled(key, job)[kind.status_field]
        if status == "InProgress":
            try:
                job.transition_if(
                    {"InProgress"}, "Stopping", "Stopping the job", **{kind.status_field: "Stopping"}
                )
                return {}
            except StatusConflict as conflict:
                status = conflict.current
        error = service_behaviour.stop_refused_error(operation, kind.noun, public_status(key, status))
        raise _service_error(error, operation)

    def _list(self, key: str, **params: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        summaries = []
        for job in self.store.all(key):
            if params.get("NameContains", "") not in job.name:
                continue
            state = self._settled(key, job)
            status = public_status(key, state[kind.status_field])
            if params.get("StatusEquals") and status != params["StatusEquals"]:
                continue
            summaries.append(
                {
                    kind.name_field: job.name,
                    kind.arn_field: state[kind.arn_field],
                    "CreationTime": dt.datetime.fromisoformat(state["CreationTime"]),
                    "LastModifiedTime": dt.datetime.fromisoformat(state["LastModifiedTime"]),
                    kind.status_field: status,
                }
            )
        summaries.sort(
            key=lambda s: s["CreationTime"], reverse=params.get("SortOrder", "Descending") == "Descending"
        )
        return {f"{kind.noun}Summaries": summaries[: params.get("MaxResults", 100)]}

    # --- tuning ---

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **params: Any) -> dict[str, Any]:
        """The trials of a tuning job, as the tuning runner last recorded them (it refreshes them while it runs).

        Defaults as the API's: ``SortBy=Name``, ``SortOrder=Ascending``, ``MaxResults=10``; sorting by
        ``FinalObjectiveMetricValue`` leaves out the trials that have no objective value.
        """
        operation = "ListTrainingJobsForHyperParameterTuningJob"
        validate_request(operation, params)
        job = self._job(JOB_KINDS["tuning"], "tuning", params["HyperParameterTuningJobName"], operation)
        summaries = [
            s
            for s in job.state().get("_trials") or []
            if not params.get("StatusEquals") or s["TrainingJobStatus"] == params["StatusEquals"]
        ]
        sort_by = params.get("SortBy", "Name")
        if sort_by == "FinalObjectiveMetricValue":
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        field = {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"}
        summaries.sort(
            key=lambda s: (
                s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
                if sort_by == "FinalObjectiveMetricValue"
                else s[field[sort_by]]
            ),
            reverse=params.get("SortOrder", "Ascending") == "Descending",
        )
        start = int(params.get("NextToken") or 0)
        end = start + int(params.get("MaxResults", 10))
        shape = output_shape(operation)
        response: dict[str, Any] = {
            "TrainingJobSummaries": _with_datetimes(
                shape.members["TrainingJobSummaries"], summaries[start:end]
            )
        }
        if end < len(summaries):
            response["NextToken"] = str(end)
        validate_response(operation, response)
        return response

    # --- models, endpoints, registry ---
    # Not jobs: JSON records under <home>/resources (see resources.py), validated like the job calls.

    @property
    def resources(self) -> ResourceStore:
        return ResourceStore(self.store.home)

    def _arn(self, noun: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:{noun}/{name.lower()}"

    @staticmethod
    def _respond(operation: str, record: dict[str, Any]) -> dict[str, Any]:
        shape = output_shape(operation)
        response = {
            k: _with_datetimes(shape.members[k], v)
            for k, v in public(record).items()
            if k in shape.members and v is not None
        }
        validate_response(operation, response)
        return response

    def _add(self, operation: str, kind: str, name: str, record: dict[str, Any], arn: str) -> None:
        if not self.resources.create(kind, name, record):
            taken = service_behaviour.HOSTING_NAME_IN_USE.get(operation)
            if taken is not None:  # the service's own words
                raise _service_error(taken.error("", arn=arn), operation)
            raise _client_error(
                "ValidationException", f'Cannot create already existing {kind} "{arn}".', operation
            )

    def _get(self, operation: str, kind: str, name: str) -> dict[str, Any]:
        record = self.resources.get(kind, name)
        if record is None:
            error = service_behaviour.not_found_error(_DESCRIBE_OF[kind], name, self._arn(kind, name))
            raise _service_error(error, operation)
        return record

    def _endpoint(self, operation: str, name: str) -> dict[str, Any]:
        """The endpoint's record; refused as the service refuses ``operation`` on a Deleting endpoint."""
        record = self._get(operation, "endpoint", name)
        if record["EndpointStatus"] == service_behaviour.ASYNC_DELETE["Endpoint"].deleting:
            refusal = service_behaviour.deleting_refusal("Endpoint", operation, name, record["EndpointArn"])
            if refusal is not None:
                raise _service_error(refusal, operation)
        return record

    def _refuse_in_progress(self, operation: str, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """Refused as the service refuses ``operation`` on an endpoint being created or updated (nothing
        cancels either). A server that died starting changes nothing any more: Describe settles it."""
        status = record["EndpointStatus"]
        if status in ("Creating", "Updating") and not process_alive(record.get("_pending_pid")):
            return record
        refusal = service_behaviour.in_progress_refusal(
            "Endpoint", operation, status, name, record["EndpointArn"]
        )
        if refusal is not None:
            raise _service_error(refusal, operation)
        return record

    def create_model(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateModel", request)
        arn = self._arn("model", request["ModelName"])
        self._add("CreateModel", "model", request["ModelName"], {**request, "ModelArn": arn}, arn)
        return {"ModelArn": arn}

    def describe_model(self, **params: Any) -> dict[str, Any]:
        validate_request("DescribeModel", params)
        return self._respond("DescribeModel", self._get("DescribeModel", "model", params["ModelName"]))

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateEndpointConfig", request)
        name = request["EndpointConfigName"]
        arn = self._arn("endpoint-config", name)
        self._add("CreateEndpointConfig", "endpoint-config", name, {**request, "EndpointConfigArn": arn}, arn)
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, **params: Any) -> dict[str, Any]:
        validate_request("DescribeEndpointConfig", params)
        record = self._get("DescribeEndpointConfig", "endpoint-config", params["EndpointConfigName"])
        return self._respond("DescribeEndpointConfig", record)

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateEndpoint", request)
        name, config = request["EndpointName"], request["EndpointConfigName"]
        self._get("CreateEndpoint", "endpoint-config", config)
        arn = self._arn("endpoint", name)
        record = {**request, "EndpointArn": arn, "EndpointStatus": "Creating"}
        self._add("CreateEndpoint", "endpoint", name, record, arn)
        pid = start_server(
            self.store.home, name, config, self.runner_env, s3_url=self.endpoint_url, region=self.region
        )
        self.resources.update("endpoint", name, _pending_pid=pid)
        return {"EndpointArn": arn}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("UpdateEndpoint", request)
        name, config = request["EndpointName"], request["EndpointConfigName"]
        record = self._endpoint("UpdateEndpoint", name)
        self._get("UpdateEndpoint", "endpoint-config", config)
        record = self._refuse_in_progress("UpdateEndpoint", name, record)
        if record["EndpointStatus"] != "InService":
            raise _client_error(
                "ValidationException",
                f'Cannot update in-progress endpoint "{record["EndpointArn"]}" ({record["EndpointStatus"]}).',
                "UpdateEndpoint",
            )
        self.resources.update("endpoint", name, **update_fields(request, record, now_iso()))
        pid = start_server(
            self.store.home, name, config, self.runner_env, s3_url=self.endpoint_url, region=self.region
        )
        self.resources.update("endpoint", name, _pending_pid=pid)
        return {"EndpointArn": record["EndpointArn"]}

    def describe_endpoint(self, **params: Any) -> dict[str, Any]:
        validate_request("DescribeEndpoint", params)
        name = params["EndpointName"]
        record = self._get("DescribeEndpoint", "endpoint", name)
        status = record["EndpointStatus"]
        pending_dead = status in ("Creating", "Updating") and not process_alive(record.get("_pending_pid"))
        if (
            pending_dead
            and (record := self._get("DescribeEndpoint", "endpoint", name))["EndpointStatus"] == status
        ):
            # The server died before it could record why (killed, out of memory): say so, as the service does.
            reason = (
                "InternalServerError: the local endpoint server exited while starting; see its server.log"
            )
            changes = {
                "EndpointStatus": "Failed" if status == "Creating" else "InService",
                "FailureReason": reason,
            }
            record = self.resources.update("endpoint", name, **changes) or record
        elif status == "InService" and not process_alive(record.get("_pid")):
            reason = "InternalServerError: the local endpoint server process exited"
            record = (
                self.resources.update("endpoint", name, EndpointStatus="Failed", FailureReason=reason)
                or record
            )
        config = self.resources.get("endpoint-config", record["EndpointConfigName"]) or {}
        serving = record["EndpointStatus"] in ("InService", "Updating")
        variants = [
            {"VariantName": v["VariantName"], "CurrentInstanceCount": int(serving), "DesiredInstanceCount": 1}
            for v in config.get("ProductionVariants", [])
        ]
        capture = config.get("DataCaptureConfig")
        summary = capture and {
            "EnableCapture": capture.get("EnableCapture", True),
            "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
            "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
            "DestinationS3Uri": capture["DestinationS3Uri"],
            "KmsKeyId": capture.get("KmsKeyId", ""),
        }
        return self._respond(
            "DescribeEndpoint", {**record, "ProductionVariants": variants, "DataCaptureConfig": summary}
        )

    def delete_endpoint(self, **params: Any) -> dict[str, Any]:
        """Asynchronous, as SageMaker's: the endpoint shows ``Deleting`` for a moment, then it is gone.

        Its servers are stopped before this returns (no process outlives a deleted endpoint); the name
        stays taken, and calls on it are refused as the service refuses them, until the moment passes.
        """
        validate_request("DeleteEndpoint", params)
        name = params["EndpointName"]
        record = self._refuse_in_progress("DeleteEndpoint", name, self._endpoint("DeleteEndpoint", name))
        deleting = service_behaviour.ASYNC_DELETE["Endpoint"].deleting
        self.resources.update("endpoint", name, EndpointStatus=deleting)
        stop_process(record.get("_pending_pid"))
        stop_process(record.get("_pid"))
        # Again after the stop: a server that was starting may have recorded itself InService meanwhile.
        self.resources.retire("endpoint", name, DELETING_SECONDS, EndpointStatus=deleting, FailureReason=None)
        return {}

    def create_model_package_group(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateModelPackageGroup", request)
        name = request["ModelPackageGroupName"]
        arn = self._arn("model-package-group", name)
        record = {
            **{k: v for k, v in request.items() if k != "Tags"},
            "ModelPackageGroupArn": arn,
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
        }
        self._add("CreateModelPackageGroup", "model-package-group", name, record, arn)
        return {"ModelPackageGroupArn": arn}

    def describe_model_package_group(self, **params: Any) -> dict[str, Any]:
        validate_request("DescribeModelPackageGroup", params)
        record = self._get(
            "DescribeModelPackageGroup", "model-package-group", params["ModelPackageGroupName"]
        )
        return self._respond("DescribeModelPackageGroup", record)

    def _packages(self, group: str) -> list[dict[str, Any]]:
        return [p for p in self.resources.all("model-package") if p["ModelPackageGroupName"] == group]

    def create_model_package(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateModelPackage", request)
        group = request.get("ModelPackageGroupName")
        if not group:
            raise _client_error(
                "ValidationException",
                "the local backend registers versioned model packages only; set ModelPackageGroupName",
                "CreateModelPackage",
            )
        self._get("CreateModelPackage", "model-package-group", group)
        token = request.get("ClientToken")
        for package in self._packages(group) if token else []:
            if package.get("_client_token") == token:  # the same call again: the same version
                return {"ModelPackageArn": package["ModelPackageArn"]}
        fields = {k: v for k, v in request.items() if k not in ("ClientToken", "Tags")}
        version = len(self._packages(group))
        while True:
            version += 1
            record = {
                **fields,
                "ModelPackageName": group,
                "ModelPackageVersion": version,
                "ModelPackageArn": self._arn("model-package", f"{group}/{version}"),
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": []},
                "ModelApprovalStatus": request.get("ModelApprovalStatus", "PendingManualApproval"),
                "CreatedBy": {},
                "_client_token": token,
            }
            if self.resources.create("model-package", f"{group}/{version}", record):
                return {"ModelPackageArn": record["ModelPackageArn"]}

    def _package(self, operation: str, name_or_arn: str) -> dict[str, Any]:
        for package in self.resources.all("model-package"):
            if name_or_arn in (
                package["ModelPackageArn"],
                f"{package['ModelPackageName']}/{package['ModelPackageVersion']}",
            ):
                return package
        arn = name_or_arn if name_or_arn.startswith("arn:") else self._arn("model-package", name_or_arn)
        raise _service_error(
            service_behaviour.not_found_error("DescribeModelPackage", name_or_arn, arn), operation
        )

    def describe_model_package(self, **params: Any) -> dict[str, Any]:
        validate_request("DescribeModelPackage", params)
        return self._respond(
            "DescribeModelPackage", self._package("DescribeModelPackage", params["ModelPackageName"])
        )

    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        validate_request("ListModelPackages", params)
        packages = [
            p
            for p in self.resources.all("model-package")
            if p["ModelPackageGroupName"] == params.get("ModelPackageGroupName", p["ModelPackageGroupName"])
            and p["ModelApprovalStatus"] == params.get("ModelApprovalStatus", p["ModelApprovalStatus"])
        ]
        packages.sort(
            key=lambda p: p["ModelPackageVersion"],
            reverse=params.get("SortOrder", "Ascending") == "Descending",
        )
        keys = (
            "ModelPackageName",
            "ModelPackageGroupName",
            "ModelPackageVersion",
            "ModelPackageArn",
            "ModelPackageDescription",
            "ModelPackageStatus",
            "ModelApprovalStatus",
        )
        summaries = [
            {
                **{k: p[k] for k in keys if k in p},
                "CreationTime": dt.datetime.fromisoformat(p["CreationTime"]),
            }
            for p in packages[: params.get("MaxResults", 100)]
        ]
        response = {"ModelPackageSummaryList": summaries}
        validate_response("ListModelPackages", response)
        return response

    def update_model_package(self, **request: Any) -> dict[str, Any]:
        validate_request("UpdateModelPackage", request)
        package = self._package("UpdateModelPackage", request["ModelPackageArn"])
        changes: dict[str, Any] = {
            k: request[k] for k in ("ModelApprovalStatus", "ApprovalDescription") if k in request
        }
        metadata = {
            **package.get("CustomerMetadataProperties", {}),
            **request.get("CustomerMetadataProperties", {}),
        }
        for key in request.get("CustomerMetadataPropertiesToRemove", []):
            metadata.pop(key, None)
        if metadata:
            changes["CustomerMetadataProperties"] = metadata
        key = f"{package['ModelPackageGroupName']}/{package['ModelPackageVersion']}"
        self.resources.update("model-package", key, **changes)
        return {"ModelPackageArn": package["ModelPackageArn"]}


# create_*/describe_*/stop_*/list_* for every kind the local backend runs, named as boto3 names them.
for _key in LOCAL_WORKERS:
    _kind = JOB_KINDS[_key]
    setattr(LocalSageMakerClient, _kind.create_method, partialmethod(LocalSageMakerClient._create, _key))
    setattr(LocalSageMakerClient, _kind.describe_method, partialmethod(LocalSageMakerClient._describe, _key))
    setattr(LocalSageMakerClient, _kind.stop_method, partialmethod(LocalSageMakerClient._stop, _key))
    setattr(
        LocalSageMakerClient,
        f"list_{_kind.describe_method[len('describe_') :]}s",
        partialmethod(LocalSageMakerClient._list, _key),
    )
