"""One resolver for the AWS PyTorch containers: repository, tag, account and domain per region."""

from __future__ import annotations

import pytest

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.containers import (
    DLC_ACCOUNTS,
    NEURON_REGIONS,
    RELEASES,
    pytorch_image,
    version_error,
)
from airflow_dl_provider.presets.instances import accelerator, has_instance_storage, instance_family


@pytest.mark.parametrize(
    ("instance_type", "family", "kind"),
    [
        ("ml.g5.4xlarge", "g5", "gpu"),  # not in the instance table
        ("ml.g6e.12xlarge", "g6e", "gpu"),
        ("ml.p5e.48xlarge", "p5e", "gpu"),
        ("ml.p6-b200.48xlarge", "p6-b200", "gpu"),
        ("ml.p3.2xlarge", "p3", "gpu"),
        ("ml.trn1.32xlarge", "trn1", "neuron"),
        ("ml.trn1n.32xlarge", "trn1n", "neuron"),
        ("ml.inf2.xlarge", "inf2", "neuron"),
        ("ml.m5.large", "m5", "cpu"),
        ("ml.c5n.18xlarge", "c5n", "cpu"),
        ("ml.m7i.xlarge", "m7i", "cpu"),
        ("local", "", "cpu"),
    ],
)
def test_accelerator_follows_the_instance_family(instance_type: str, family: str, kind: str) -> None:
    assert instance_family(instance_type) == family
    assert accelerator(instance_type) == kind


@pytest.mark.parametrize(
    ("instance_type", "nvme"),
    [
        ("ml.p3dn.24xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.p4de.24xlarge", True),
        ("ml.p5.48xlarge", True),
        ("ml.p5en.48xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.g5.4xlarge", True),
        ("ml.g6.xlarge", True),
        ("ml.g6e.2xlarge", True),
        ("ml.trn1.2xlarge", True),
        ("ml.trn1n.32xlarge", True),
        ("ml.m5d.large", True),
        ("ml.c5d.xlarge", True),
        ("ml.r5d.2xlarge", True),
        ("ml.m6id.large", True),  # by EC2's "d" attribute, though no row names it
        ("ml.p3.16xlarge", False),
        ("ml.m5.large", False),
        ("ml.c5n.18xlarge", False),
        ("ml.inf2.xlarge", False),
    ],
)
def test_instance_storage(instance_type: str, nvme: bool) -> None:
    assert has_instance_storage(instance_type) is nvme


@pytest.mark.parametrize(
    ("args", "uri"),
    [
        (
            ("training", "us-east-1", "2.5.1", None, "ml.g5.4xlarge"),
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker",
        ),
        (
            ("training", "us-west-2", "2.6.0", None, "ml.g6e.xlarge"),
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.6.0-gpu-py312-cu126-ubuntu22.04-sagemaker",
        ),
        (
            # Inference 2.6 is CUDA 12.4 where training 2.6 is 12.6: one table per repository.
            ("inference", "us-west-2", "2.6.0", "py312", "ml.g6e.xlarge"),
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker",
        ),
        (
            ("training", "eu-west-1", "2.3.0", "py311", "ml.m5.large"),
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3.0-cpu-py311-ubuntu20.04-sagemaker",
        ),
        (
            ("training", "us-east-1", "2.8.0", None, "ml.trn1.32xlarge"),
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04",
        ),
        (
            ("inference", "us-east-2", "2.5.1", None, "ml.inf2.xlarge"),
            "763104351884.dkr.ecr.us-east-2.amazonaws.com/pytorch-inference-neuronx:2.5.1-neuronx-py310-sdk2.22.0-ubuntu22.04",
        ),
        (
            ("inference", "ap-east-1", "2.5.1", "py311", "ml.m5.xlarge"),
            "871362719292.dkr.ecr.ap-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker",
        ),
        (
            ("training", "il-central-1", "2.5.1", None, "ml.p5.48xlarge"),
            "780543022126.dkr.ecr.il-central-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker",
        ),
        (
            ("training", "cn-northwest-1", "2.5.1", None, "ml.m5.large"),
            "727897471807.dkr.ecr.cn-northwest-1.amazonaws.com.cn/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker",
        ),
        (
            ("training", "us-gov-west-1", "2.5.1", None, "ml.p4d.24xlarge"),
            "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker",
        ),
    ],
)
def test_image_uri(args: tuple[str, str, str, str | None, str], uri: str) -> None:
    assert pytorch_image(*args) == uri  # type: ignore[arg-type]


def test_every_region_has_its_own_account() -> None:
    expected = {
        "ap-east-1": "871362719292",
        "me-south-1": "217643126080",
        "af-south-1": "626614931356",
        "eu-south-1": "692866216735",
        "ap-southeast-3": "907027046896",
        "il-central-1": "780543022126",
        "me-central-1": "914824155844",
        "ap-south-2": "772153158452",
        "eu-central-2": "380420809688",
        "eu-south-2": "503227376785",
        "ap-southeast-4": "457447274322",
        "ca-west-1": "204538143572",
        "mx-central-1": "637423239942",
        "cn-north-1": "727897471807",
        "us-gov-east-1": "446045086412",
        "us-gov-west-1": "442386744353",
    }
    assert {region: DLC_ACCOUNTS[region] for region in expected} == expected
    for region in expected:
        assert pytorch_image("training", region, "2.5.1", None, "ml.m5.large").startswith(
            f"{expected[region]}.dkr.ecr.{region}."
        )
    assert NEURON_REGIONS.issubset(DLC_ACCOUNTS)


def test_every_sagemaker_region_of_botocore_has_an_account() -> None:
    # The table and the installed SDK's endpoint data agree outside the ISO partitions.
    import botocore.session

    session = botocore.session.get_session()
    regions = {
        region
        for partition in ("aws", "aws-cn", "aws-us-gov")
        for region in session.get_available_regions("sagemaker", partition)
    }
    assert regions - set(DLC_ACCOUNTS) == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("training", "us-east-1", "2.9.9", None, "ml.m5.large"),
            "framework_version: pytorch-training has no '2.9.9' image; it has 2.3.0 (py311), 2.4.0 (py311), "
            "2.5.1 (py311), 2.6.0 (py312)",
        ),
        (
            ("training", "us-east-1", "2.6.0", "py311", "ml.g5.xlarge"),
            "py_version: pytorch-training 2.6.0 is built for py312, not 'py311'; set py_version='py312'",
        ),
        (
            # trn1 needs the Neuron image, which is built for another Python than the GPU one.
            ("training", "us-east-1", "2.5.1", "py311", "ml.trn1.2xlarge"),
            "py_version: pytorch-training-neuronx 2.5.1 is built for py310, not 'py311'",
        ),
        (
            ("inference", "us-east-1", "2.8.0", None, "ml.m5.xlarge"),
            "framework_version: pytorch-inference has no '2.8.0' image",
        ),
        (
            ("training", "af-south-1", "2.8.0", None, "ml.trn1.2xlarge"),
            "region: the PyTorch Neuron containers are not hosted in af-south-1",
        ),
        (
            ("training", "us-east-9", "2.5.1", None, "ml.m5.large"),
            "region: no AWS Deep Learning Containers registry is known in 'us-east-9'; pass image_uri",
        ),
        (
            ("inference", "us-east-1", "2.5.1", None, "ml.inf1.xlarge"),
            "instance_type: ml.inf1.xlarge (Inferentia 1) needs a pytorch-inference-neuron image",
        ),
    ],
)
def test_no_image_is_one_line_naming_the_field(
    args: tuple[str, str, str, str | None, str], message: str
) -> None:
    with pytest.raises(PreflightError) as caught:
        pytorch_image(*args)  # type: ignore[arg-type]
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_version_error_without_an_instance_type_accepts_any_accelerator() -> None:
    # A templated instance type: the version must exist for some accelerator of the job.
    assert version_error("training", "2.7.0", "py310", None) is None  # Neuron only
    assert version_error("training", "2.7.1", None, None) is None  # CPU/GPU only
    assert version_error("training", "2.7.1", "py310", None) == (
        "py_version: pytorch-training 2.7.1 is built for py312, not 'py310'; set py_version='py312' "
        "(or leave it unset) or pass image_uri"
    )


def test_every_release_is_tagged_consistently() -> None:
    for repository, releases in RELEASES.items():
        neuron = repository.endswith("-neuronx")
        for version, release in releases.items():
            assert release.py_versions, (repository, version)
            assert (release.neuron_sdk is not None) is neuron, (repository, version)
            assert (release.cuda is not None) is not neuron, (repository, version)
