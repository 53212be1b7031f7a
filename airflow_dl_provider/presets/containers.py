"""The AWS Deep Learning Containers for PyTorch on SageMaker: one resolver for training and inference.

Tables, pure. Which image runs a job follows from three things: the job (training or inference), the
instance's accelerator (:func:`~airflow_dl_provider.presets.instances.accelerator`: NVIDIA GPU, AWS
Neuron or CPU) and the framework version; each image is built for its own Python (and CUDA or Neuron
SDK), and each region pulls it from its own ECR account.

Sources (read 2026-08):

- the SageMaker Python SDK's ``image_uri_config/pytorch.json`` (aws/sagemaker-python-sdk,
  ``sagemaker-core/src/sagemaker/core/image_uri_config/pytorch.json``, formerly
  ``src/sagemaker/image_uri_config/pytorch.json``): framework versions, their Python, and the
  registry account of every region (GovCloud included);
- the AWS Deep Learning Containers' ``available_images.md`` (aws/deep-learning-containers, and its
  ``docs/src/data/pytorch-*/*.yml`` since the page moved to
  https://aws.github.io/deep-learning-containers/reference/available_images/): CUDA and OS tags of
  the SageMaker images, the Neuron (``-neuronx``) images and the regions that host them, and the
  China regions' ``amazonaws.com.cn`` domain.

The ISO partitions are left out: their accounts are not published with the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.instances import Accelerator, accelerator

Scope = Literal["training", "inference"]


@dataclass(frozen=True)
class Release:
    """One framework version of one image repository.

    :param py_versions: the Python builds it ships (``py311``); the first is the default.
    :param os: the OS tag, e.g. ``ubuntu22.04``.
    :param cuda: the CUDA tag of the GPU image (``cu124``); None for Neuron images.
    :param neuron_sdk: the Neuron SDK of a Neuron image (``2.26.1``).
    """

    py_versions: tuple[str, ...]
    os: str
    cuda: str | None = None
    neuron_sdk: str | None = None


# The repository per (job, accelerator). CPU and GPU share one repository, told apart by the tag.
REPOSITORIES: dict[tuple[Scope, Accelerator], str] = {
    ("training", "cpu"): "pytorch-training",
    ("training", "gpu"): "pytorch-training",
    ("training", "neuron"): "pytorch-training-neuronx",
    ("inference", "cpu"): "pytorch-inference",
    ("inference", "gpu"): "pytorch-inference",
    ("inference", "neuron"): "pytorch-inference-neuronx",
}

# Releases whose training and inference images are built alike (one OS and CUDA, or one Neuron SDK).
_GPU_BOTH: dict[str, Release] = {
    "2.3.0": Release(("py311",), "ubuntu20.04", cuda="cu121"),
    "2.4.0": Release(("py311",), "ubuntu22.04", cuda="cu124"),
    "2.5.1": Release(("py311",), "ubuntu22.04", cuda="cu124"),
}
# Trainium and Inferentia2 (trn1, trn1n, trn2, inf2): the newest Neuron SDK of each version.
_NEURON_BOTH: dict[str, Release] = {
    "2.5.1": Release(("py310",), "ubuntu22.04", neuron_sdk="2.22.0"),
    "2.6.0": Release(("py310",), "ubuntu22.04", neuron_sdk="2.23.0"),
    "2.7.0": Release(("py310",), "ubuntu22.04", neuron_sdk="2.25.0"),
    "2.8.0": Release(("py311",), "ubuntu22.04", neuron_sdk="2.26.1"),
}

RELEASES: dict[str, dict[str, Release]] = {
    "pytorch-training": {
        **_GPU_BOTH,
        "2.6.0": Release(("py312",), "ubuntu22.04", cuda="cu126"),
        "2.7.1": Release(("py312",), "ubuntu22.04", cuda="cu128"),
        "2.8.0": Release(("py312",), "ubuntu22.04", cuda="cu129"),
    },
    "pytorch-inference": {
        **_GPU_BOTH,
        # Inference 2.6 is built on CUDA 12.4, training 2.6 on 12.6.
        "2.6.0": Release(("py312",), "ubuntu22.04", cuda="cu124"),
    },
    "pytorch-training-neuronx": {
        **_NEURON_BOTH,
        "2.9.0": Release(("py312",), "ubuntu24.04", neuron_sdk="2.30.0"),
    },
    "pytorch-inference-neuronx": {
        **_NEURON_BOTH,
        "2.9.0": Release(("py312",), "ubuntu24.04", neuron_sdk="2.31.1"),
    },
}

_DEFAULT_ACCOUNT = "763104351884"
# The ECR account that hosts the Deep Learning Containers, per region (pytorch.json "registries").
DLC_ACCOUNTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
            "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3",
            "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
        ),
        _DEFAULT_ACCOUNT,
    ),
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}  # fmt: skip

# Regions whose registry holds the Neuron images ("Neuron Container: Available" in available_images.md).
NEURON_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-2", "sa-east-1", "eu-central-1", "eu-west-1", "eu-west-3",
        "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-east-2",
    }
)  # fmt: skip


def ecr_domain(region: str) -> str:
    """``amazonaws.com``, or ``amazonaws.com.cn`` in the China regions."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def _repository(scope: Scope, instance_type: str) -> str:
    kind = accelerator(instance_type)
    if kind == "neuron" and instance_type.startswith("ml.inf1."):
        # Inferentia 1 runs the Neuron SDK 1.x images (pytorch-inference-neuron), not -neuronx.
        raise PreflightError(
            f"instance_type: {instance_type} (Inferentia 1) needs a pytorch-inference-neuron image; pass "
            "image_uri, or use ml.inf2.* with the PyTorch Neuron (neuronx) container"
        )
    return REPOSITORIES[(scope, kind)]


def version_error(
    scope: Scope, framework_version: str, py_version: str | None, instance_type: str | None = None
) -> str | None:
    """Why no image fits, in one line naming the field and the versions that exist; None when one does.

    :param instance_type: None (e.g. still templated): any accelerator's image will do.
    """
    if instance_type is None:
        repositories = sorted({r for (s, _k), r in REPOSITORIES.items() if s == scope})
    else:
        repositories = [_repository(scope, instance_type)]
    for repository in repositories:
        release = RELEASES[repository].get(framework_version)
        if release and (py_version is None or py_version in release.py_versions):
            return None
    repository = repositories[0]
    for candidate in repositories:
        if framework_version in RELEASES[candidate]:
            repository = candidate
            break
    releases = RELEASES[repository]
    known = ", ".join(f"{v} ({'/'.join(r.py_versions)})" for v, r in releases.items())
    if framework_version not in releases:
        return (
            f"framework_version: {repository} has no {framework_version!r} image; it has {known}; "
            "set framework_version to one of those or pass image_uri"
        )
    pythons = releases[framework_version].py_versions
    return (
        f"py_version: {repository} {framework_version} is built for {'/'.join(pythons)}, not {py_version!r}; "
        f"set py_version={pythons[0]!r} (or leave it unset) or pass image_uri"
    )


def pytorch_image(
    scope: Scope, region: str, framework_version: str, py_version: str | None, instance_type: str
) -> str:
    """The AWS Deep Learning Container URI for a PyTorch ``scope`` job on ``instance_type`` in ``region``.

    :param scope: ``training`` or ``inference``.
    :param py_version: e.g. ``py311``; None: the Python the image is built for.
    :raises PreflightError: no image for that version, Python, accelerator or region (one line).
    """
    repository = _repository(scope, instance_type)
    problem = version_error(scope, framework_version, py_version, instance_type)
    if problem:
        raise PreflightError(problem)
    account = DLC_ACCOUNTS.get(region)
    if account is None:
        raise PreflightError(
            f"region: no AWS Deep Learning Containers registry is known in {region!r}; pass image_uri "
            f"or run in one of {', '.join(sorted(DLC_ACCOUNTS))}"
        )
    release = RELEASES[repository][framework_version]
    python = py_version or release.py_versions[0]
    if release.neuron_sdk:
        if region not in NEURON_REGIONS:
            raise PreflightError(
                f"region: the PyTorch Neuron containers are not hosted in {region}; pass image_uri or run "
                f"{instance_type} in one of {', '.join(sorted(NEURON_REGIONS))}"
            )
        tag = f"{framework_version}-neuronx-{python}-sdk{release.neuron_sdk}-{release.os}"
    elif accelerator(instance_type) == "gpu":
        tag = f"{framework_version}-gpu-{python}-{release.cuda}-{release.os}-sagemaker"
    else:
        tag = f"{framework_version}-cpu-{python}-{release.os}-sagemaker"
    return f"{account}.dkr.ecr.{region}.{ecr_domain(region)}/{repository}:{tag}"
