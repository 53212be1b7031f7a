"""Pre-flight checks: each bad input is one line naming the field, raised before any job exists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import PreflightError, RequestValidationError
from airflow_dl_provider.operators.training import DistributedTrainingOperator
from airflow_dl_provider.validation.preflight import (
    check_channels,
    check_cost,
    check_distribution,
    check_region,
    check_s3_prefix,
    check_search_cost,
    check_spot,
    check_volume_kms,
    estimate_cost_usd,
    split_s3_uri,
)

if TYPE_CHECKING:
    from pathlib import Path

# Not imported from tests.conftest: importing conftest.py a second time, as a module of that name,
# would run its module code again and point AIRFLOW_HOME at a new, unmigrated directory.
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
# -- the pure checks ----------------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize(
    ("instance_type", "count", "distribution", "allow_no_efa"),
    [
        ("ml.p3dn.24xlarge", 2, "torch_distributed", False),
        ("ml.p4d.24xlarge", 16, "smdataparallel", False),
        ("ml.p3.16xlarge", 1, "torch_distributed", False),  # one node: no inter-node NCCL
        ("ml.p3.16xlarge", 2, "torch_distributed", True),
        ("ml.g5.12xlarge", 2, "pytorch_ddp", True),
        ("ml.trn1.32xlarge", 4, "torch_distributed", False),
        # GPU types the instance table lacks are GPUs all the same (the family says so).
        ("ml.g5.4xlarge", 1, "torch_distributed", False),
        ("ml.g6e.48xlarge", 2, "torch_distributed", False),
        ("ml.p5e.48xlarge", 1, "torch_distributed", False),
        ("ml.trn2.48xlarge", 2, "torch_distributed", False),
        ("ml.c5.xlarge", 4, "mpi", False),  # CPU: EFA is a GPU concern
        ("ml.p3.16xlarge", 2, None, False),  # no distribution chosen: nothing to check
    ],
)
def test_check_distribution_accepts(
    instance_type: str, count: int, distribution: str | None, allow_no_efa: bool
) -> None:
    check_distribution(instance_type, count, distribution, allow_no_efa)


@pytest.mark.parametrize(
    ("instance_type", "count", "distribution", "field", "hint"),
    [
        ("ml.c5.xlarge", 1, "smdataparallel", "distribution:", "ml.p4d.24xlarge"),
        ("ml.g5.48xlarge", 2, "smdataparallel", "distribution:", "torch_distributed"),
        ("ml.c5.xlarge", 2, "torch_distributed", "distribution:", "GPU"),
        ("ml.p3.16xlarge", 2, "torch_distributed", "instance_type:", "allow_no_efa=True"),
        ("ml.g5.12xlarge", 4, "pytorch_ddp", "instance_type:", "ml.p3dn.24xlarge"),
        ("ml.p3dn.24xlarge", 2, "horovod", "distribution:", "torch_distributed"),
    ],
)
def test_check_distribution_refuses(
    instance_type: str, count: int, distribution: str, field: str, hint: str
) -> None:
    with pytest.raises(PreflightError) as caught:
        check_distribution(instance_type, count, distribution, False)
    text = _one_line(caught.value)
    assert text.startswith(field)
    assert hint in text


def _spot(run: int, wait: int | None, *, spot: bool = True) -> dict[str, Any]:
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": run}
    if wait is not None:
        stopping["MaxWaitTimeInSeconds"] = wait
    return {"EnableManagedSpotTraining": spot, "StoppingCondition": stopping}


def test_check_spot() -> None:
    check_spot(_spot(3600, 3600))
    check_spot(_spot(3600, 7200))
    check_spot(_spot(3600, None, spot=False))
    for request, words in (
        (_spot(3600, 1800), "(1800) >= MaxRuntimeInSeconds (3600)"),
        (_spot(3600, None), "(None)"),
        (_spot(3600, 7200, spot=False), "only allowed with use_spot=True"),
    ):
        with pytest.raises(PreflightError, match=r"^spot_max_wait_seconds: ") as caught:
            check_spot(request)
        assert words in _one_line(caught.value)


def test_check_channels_needs_a_vpc_for_fsx() -> None:
    fsx = {
        "ChannelName": "train",
        "DataSource": {"FileSystemDataSource": {"FileSystemId": "fs-0123456789abcdef0"}},
    }
    with pytest.raises(
        PreflightError, match=r"^channels\['train'\]: an FSx for Lustre channel needs a VpcConfig"
    ):
        check_channels({"InputDataConfig": [fsx]})
    check_channels({"InputDataConfig": [fsx], "VpcConfig": {"Subnets": ["s"], "SecurityGroupIds": ["g"]}})
    check_channels({})


P3DN_X2 = {
    "ResourceConfig": {"InstanceType": "ml.p3dn.24xlarge", "InstanceCount": 2},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


def test_estimate_and_check_cost() -> None:
    assert estimate_cost_usd("ml.p3dn.24xlarge", 2, 3600) == pytest.approx(2 * 35.894)
    assert estimate_cost_usd("ml.p3dn.24xlarge", 2, 1800, price_per_hour=10.0) == pytest.approx(10.0)
    assert estimate_cost_usd("ml.unknown.xlarge", 1, 3600) is None
    request = P3DN_X2
    assert check_cost(request, None).usd == pytest.approx(71.788)
    estimate = check_cost(request, 100.0)
    assert estimate.usd == pytest.approx(71.788)
    assert estimate.basis == (
        "2 x ml.p3dn.24xlarge for max_runtime_seconds=3600 at the us-east-1 on-demand price"
    )
    with pytest.raises(
        PreflightError, match=r"^max_cost_usd: up to \$71\.79 \(2 x ml\.p3dn\.24xlarge"
    ) as caught:
        check_cost(request, 50.0)
    _one_line(caught.value)
    unknown = {**request, "ResourceConfig": {"InstanceType": "ml.unknown.xlarge", "InstanceCount": 1}}
    with pytest.raises(
        PreflightError, match=r"^max_cost_usd: no list price for ml\.unknown\.xlarge; pass price_per_hour"
    ):
        check_cost(unknown, 10.0)
    assert check_cost(unknown, 10.0, price_per_hour=1.0).usd == pytest.approx(1.0)


def test_prices_are_us_east_1_and_other_regions_have_none() -> None:
    # Elsewhere the table has no price: it says so instead of lending us-east-1's.
    assert estimate_cost_usd("ml.p3dn.24xlarge", 2, 3600, region="eu-west-1") is None
    estimate = check_cost(P3DN_X2, None, region="eu-west-1")
    assert estimate.usd is None
    assert estimate.basis == (
        "no list price for ml.p3dn.24xlarge in eu-west-1 (the built-in prices are us-east-1's); "
        "pass price_per_hour"
    )
    with pytest.raises(PreflightError) as caught:
        check_cost(P3DN_X2, 1000.0, region="eu-west-1")
    assert _one_line(caught.value).startswith(
        "max_cost_usd: no list price for ml.p3dn.24xlarge in eu-west-1 (the built-in prices are us-east-1's)"
    )
    priced = check_cost(P3DN_X2, 1000.0, price_per_hour=40.0, region="eu-west-1")
    assert priced.usd == pytest.approx(80.0)
    assert priced.basis.endswith("at $40.00/h")


def test_search_cost_is_every_trial_at_its_worst() -> None:
    search = check_search_cost(P3DN_X2, 6, 500.0)
    assert search.usd == pytest.approx(6 * 71.788)
    assert search.basis.startswith("worst case for 6 trials x $71.79 (2 x ml.p3dn.24xlarge")
    assert search.basis.endswith("= $430.73")
    # One trial fits the ceiling, the search does not.
    with pytest.raises(PreflightError) as caught:
        check_search_cost(P3DN_X2, 6, 100.0)
    assert _one_line(caught.value).startswith(
        "max_cost_usd: worst case for 6 trials x $71.79 (2 x ml.p3dn.24xlarge for max_runtime_seconds=3600 at "
        "the us-east-1 on-demand price) = $430.73 exceeds $100.00; lower max_jobs"
    )


@pytest.mark.parametrize("region", ["us-east-1", "af-south-1", "cn-north-1", "us-gov-west-1", "il-central-1"])
def test_check_region_accepts_sagemaker_regions(region: str) -> None:
    check_region(region)


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (
            "us-east-9",
            "region: 'us-east-9' is not a region SageMaker runs in (did you mean us-east-2 or us-east-1",
        ),
        ("eu-wset-1", "region: 'eu-wset-1' is not a region SageMaker runs in (did you mean eu-west-1"),
        ("", "region: no AWS region is set; set region_name on the operator or in the connection's extra"),
    ],
)
def test_check_region_refuses(region: str, message: str) -> None:
    with pytest.raises(PreflightError) as caught:
        check_region(region)
    text = _one_line(caught.value)
    assert text.startswith(message), text
    assert "region_name" in text


def test_check_volume_kms() -> None:
    def request(instance_type: str) -> dict[str, Any]:
        return {"ResourceConfig": {"InstanceType": instance_type, "VolumeKmsKeyId": "alias/k"}}

    check_volume_kms(request("ml.p3.16xlarge"))
    check_volume_kms({"ResourceConfig": {"InstanceType": "ml.p4d.24xlarge"}})
    for instance_type in ("ml.p4d.24xlarge", "ml.g5.4xlarge", "ml.trn1.2xlarge", "ml.c5d.xlarge"):
        with pytest.raises(PreflightError) as caught:
            check_volume_kms(request(instance_type))
        assert _one_line(caught.value).startswith(
            f"volume_kms_key_id: {instance_type} has local NVMe instance storage"
        )


def test_split_s3_uri() -> None:
    assert split_s3_uri("s3://bucket/a/b/", "output_path") == ("bucket", "a/b/")
    for bad in ("https://bucket/a", "s3:///a", "bucket/a"):
        with pytest.raises(PreflightError, match=r"^output_path: "):
            split_s3_uri(bad, "output_path")


def test_check_s3_prefix(local_backend: Any) -> None:
    local_backend.upload("data/train/part-0.csv", "1,2\n")
    check_s3_prefix(local_backend.s3, local_backend.uri("data/train/"), "channels['train']")
    check_s3_prefix(local_backend.s3, local_backend.uri("data/tr"), "channels['train']")
    with pytest.raises(PreflightError, match=r"^channels\['test'\]: no objects under s3://") as caught:
        check_s3_prefix(local_backend.s3, local_backend.uri("data/test/"), "channels['test']")
    _one_line(caught.value)
    with pytest.raises(
        PreflightError, match=r"^channels\['test'\]: cannot list s3://no-such-bucket-x/a \(NoSuchBucket\)"
    ):
        check_s3_prefix(local_backend.s3, "s3://no-such-bucket-x/a", "channels['test']")


# -- the operator: bad input fails before anything is created ----------------------------------------


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "train.py").write_text("print('hi')\n")
    return root


@pytest.fixture
def train_uri(local_backend: Any) -> str:
    return local_backend.upload("data/train/part-0.csv", "label,p0\n1,2\n").rsplit("/", 1)[0] + "/"


def _operator(local_backend: Any, src: Path, train_uri: str, **kwargs: Any) -> DistributedTrainingOperator:
    args: dict[str, Any] = {
        "task_id": "train",
        "role_arn": ROLE_ARN,
        "output_path": local_backend.uri("output"),
        "channels": {"train": train_uri},
        "entry_point": "train.py",
        "source_dir": str(src),
        "instance_type": "ml.m5.large",
        "max_runtime_seconds": 600,
        "poll_interval": 1,
    }
    args.update(kwargs)
    return DistributedTrainingOperator(**args)


def _jobs(local_backend: Any) -> list[Path]:
    return sorted((local_backend.home / "jobs").glob("*/*"))


def _source_uploaded(local_backend: Any) -> bool:
    page = local_backend.s3.list_objects_v2(Bucket=local_backend.bucket, Prefix="output/source/")
    return bool(page.get("KeyCount"))


BAD_INPUTS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "unknown_instance_type",
        {"instance_type": "ml.bogus.xlarge"},
        RequestValidationError,
        "CreateTrainingJob.ResourceConfig.InstanceType: 'ml.bogus.xlarge' is not a valid value",
    ),
    (
        "smdataparallel_on_cpu",
        {"instance_type": "ml.c5.xlarge", "distribution": "smdataparallel"},
        PreflightError,
        "distribution: 'smdataparallel' does not run on ml.c5.xlarge",
    ),
    (
        "multi_node_gpu_without_efa",
        {"instance_type": "ml.p3.16xlarge", "instance_count": 2, "distribution": "torch_distributed"},
        PreflightError,
        "instance_type: ml.p3.16xlarge has no EFA",
    ),
    (
        "spot_wait_shorter_than_runtime",
        {"use_spot": True, "max_runtime_seconds": 3600, "spot_max_wait_seconds": 1800},
        PreflightError,
        "spot_max_wait_seconds: managed spot needs MaxWaitTimeInSeconds (1800) >= MaxRuntimeInSeconds (3600)",
    ),
    (
        "fsx_without_vpc",
        {
            "channels": {
                "train": {"fsx": {"file_system_id": "fs-0123456789abcdef0", "directory_path": "/fsx/train"}}
            }
        },
        PreflightError,
        "channels['train']: an FSx for Lustre channel needs a VpcConfig",
    ),
    (
        "empty_input_prefix",
        {"channels": {"train": "s3://BUCKET/data/nothing-here/"}},
        PreflightError,
        "channels['train']: no objects under s3://",
    ),
    (
        "cost_over_ceiling",
        {
            "instance_type": "ml.p3dn.24xlarge",
            "instance_count": 4,
            "max_runtime_seconds": 86400,
            "max_cost_usd": 500,
        },
        PreflightError,
        "max_cost_usd: up to $3,445.82 (4 x ml.p3dn.24xlarge for max_runtime_seconds=86400 at the us-east-1 "
        "on-demand price) exceeds $500.00",
    ),
    (
        "unknown_region",
        {"region_name": "us-east-9"},
        PreflightError,
        "region: 'us-east-9' is not a region SageMaker runs in (did you mean us-east-2 or us-east-1",
    ),
    (
        "unknown_region_with_own_image",
        {"region_name": "us-east-9", "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"},
        PreflightError,
        "region: 'us-east-9' is not a region SageMaker runs in (did you mean",
    ),
    (
        "volume_key_on_nvme_instance_named_by_a_template",
        {"instance_type": "{{ params.instance_type }}", "volume_kms_key_id": "alias/training"},
        PreflightError,
        "volume_kms_key_id: ml.p4d.24xlarge has local NVMe instance storage",
    ),
    (
        "volume_key_on_nvme_instance_through_overrides",
        {
            "instance_type": "ml.g5.4xlarge",
            "overrides": {"ResourceConfig": {"VolumeKmsKeyId": "alias/training"}},
        },
        PreflightError,
        "volume_kms_key_id: ml.g5.4xlarge has local NVMe instance storage",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_fails_in_one_line_before_any_job(
    local_backend: Any,
    source_dir: Path,
    train_uri: str,
    task_context: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    if "channels" in kwargs and isinstance(kwargs["channels"]["train"], str):
        kwargs = {
            **kwargs,
            "channels": {"train": kwargs["channels"]["train"].replace("BUCKET", local_backend.bucket)},
        }
    op = _operator(local_backend, source_dir, train_uri, **kwargs)
    if op.training.cluster.instance_type.startswith("{{"):
        op.training.cluster.instance_type = "ml.p4d.24xlarge"  # as rendered
    with pytest.raises(error) as caught:
        op.execute(task_context())
    text = _one_line(caught.value)
    assert text.startswith(message), text
    assert _jobs(local_backend) == []
    assert op.job_name is None
    assert not _source_uploaded(local_backend)  # nothing staged either: checks come first


def test_multi_node_gpu_without_efa_passes_with_allow_no_efa(
    local_backend: Any, source_dir: Path, train_uri: str, task_context: Any
) -> None:
    op = _operator(
        local_backend,
        source_dir,
        train_uri,
        instance_type="ml.p3.16xlarge",
        instance_count=2,
        distribution="torch_distributed",
        allow_no_efa=True,
    )
    context = task_context()
    plan = op.render_plan(context)
    request = plan.request
    op.preflight(plan, context)
    assert request["ResourceConfig"]["InstanceCount"] == 2


def test_cost_under_ceiling_passes(
    local_backend: Any, source_dir: Path, train_uri: str, task_context: Any
) -> None:
    op = _operator(
        local_backend,
        source_dir,
        train_uri,
        instance_type="ml.p3dn.24xlarge",
        max_runtime_seconds=3600,
        max_cost_usd=40,
    )
    context = task_context()
    op.preflight(op.render_plan(context), context)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"entry_point": None},
            "train: script.entry_point: set the training script (inside source_dir), or pass image_uri",
        ),
        (
            {"entry_point": "missing.py"},
            "train: script.entry_point: 'missing.py' is not a file in source_dir",
        ),
        (
            {"source_dir": None},
            "train: script.source_dir: entry_point 'train.py' needs the directory that holds it",
        ),
        ({"distribution": "horovod"}, "train: script.distribution: 'horovod' is not one of"),
        ({"input_mode": "Stream"}, "train: input_mode: 'Stream' is not one of File, FastFile, Pipe"),
        ({"instance_count": 0}, "train: cluster.instance_count must be >= 1, got 0"),
        ({"subnets": ["subnet-1"]}, "train: vpc: subnets and security_group_ids go together"),
        (
            {"channels": {"train": {"s3_uri": "s3://b/x", "shard": True}}},
            "train: channels['train'] has unknown key(s) ['shard']",
        ),
        (
            {"channels": {"train": {"fsx": {"file_system_id": "fs-1"}}}},
            "train: channels['train'].fsx needs file_system_id and directory_path",
        ),
        (
            {"instance_type": "ml.p4d.24xlarge", "volume_kms_key_id": "alias/training"},
            "train: volume_kms_key_id: ml.p4d.24xlarge has local NVMe instance storage",
        ),
        (
            {"instance_type": "ml.g5.4xlarge", "volume_kms_key_id": "alias/training"},
            "train: volume_kms_key_id: ml.g5.4xlarge has local NVMe instance storage",
        ),
        ({"framework_version": "2.9.9"}, "train: framework_version: pytorch-training has no '2.9.9' image"),
        (
            {"framework_version": "2.6.0", "py_version": "py311"},
            "train: py_version: pytorch-training 2.6.0 is built for py312, not 'py311'",
        ),
        (
            {"instance_type": "ml.trn1.2xlarge", "py_version": "py311"},
            "train: py_version: pytorch-training-neuronx 2.5.1 is built for py310, not 'py311'",
        ),
        (
            {"enable_network_isolation": True, "channels": {"code": "s3://b/x"}},
            "train: channels: 'code' is the channel that carries the code under network isolation",
        ),
        ({"if_exists": "replace"}, "train: if_exists: 'replace' is not one of reattach, fail, new"),
        ({"poll_interval": 0}, "train: poll_interval must be > 0 seconds"),
    ],
)
def test_bad_arguments_fail_at_construction(
    local_backend: Any, source_dir: Path, train_uri: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        _operator(local_backend, source_dir, train_uri, **kwargs)
    assert _one_line(caught.value).startswith(message)


def test_entry_point_missing_after_rendering_fails_before_any_job(
    local_backend: Any, source_dir: Path, train_uri: str, task_context: Any, tmp_path: Path
) -> None:
    # A templated source_dir is only checked once rendered: it must then fail as early as at import.
    op = _operator(local_backend, source_dir, train_uri, source_dir="{{ params.code }}")
    op.training.script.source_dir = str(tmp_path / "empty")  # as rendered
    with pytest.raises(PreflightError) as caught:
        op.execute(task_context())
    assert _one_line(caught.value).startswith("script.entry_point: 'train.py' is not a file in source_dir")
    assert _jobs(local_backend) == []
