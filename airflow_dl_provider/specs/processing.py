"""A processing job's data as specs: what it reads (:class:`ProcessingInput`), what it writes
(:class:`ProcessingOutput`) and the script it runs (:class:`ProcessingScript`).

SageMaker downloads each input to its ``LocalPath`` inside the container before the job starts and
uploads each output's ``LocalPath`` when it ends (``EndOfJob``) or while it runs (``Continuous``).
Both paths must begin with ``/opt/ml/processing/`` (API_ProcessingS3Input, API_ProcessingS3Output).
A script is shipped as the SageMaker SDK's ``ScriptProcessor`` ships it: an input named ``code`` at
``/opt/ml/processing/input/code``, run by ``command`` (``python3``). Pure: building reads nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.jobs.plan import DIGEST, Upload
from airflow_dl_provider.specs.fields import check_choice, fixed

if TYPE_CHECKING:
    from airflow_dl_provider.jobs.plan import RequestPath

CONTAINER_ROOT = service_behaviour.PROCESSING.container_root
# The SageMaker SDK's ScriptProcessor: the code input's name and where the container finds it.
CODE_INPUT, CODE_LOCAL_PATH = service_behaviour.PROCESSING_CODE_INPUT
CODE_AT: RequestPath = ("ProcessingInputs", ("InputName", CODE_INPUT), "S3Input", "S3Uri")
DATA_TYPES = ("S3Prefix", "ManifestFile")
INPUT_MODES = ("File", "Pipe")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
COMPRESSION = ("None", "Gzip")
UPLOAD_MODES = ("EndOfJob", "Continuous")


def _check_local_path(where: str, path: str, rendered: bool) -> None:
    if fixed(path, rendered) and not str(path).startswith(CONTAINER_ROOT):
        raise ValueError(f"{where}.local_path: {path!r} must begin with {CONTAINER_ROOT} (SageMaker's rule)")


def _check_s3(where: str, uri: str, rendered: bool) -> None:
    if fixed(uri, rendered) and not str(uri).startswith("s3://"):
        raise ValueError(f"{where}.s3_uri: {uri!r} is not an s3:// URI")


@dataclass
class _Location:
    """What an input and an output share: a name, an S3 URI and a path in the container."""

    name: str
    s3_uri: str
    local_path: str

    template_fields: ClassVar[tuple[str, ...]] = ("s3_uri", "local_path")
    # How messages name the list, and the API's name and S3 members: ("inputs", "InputName", "S3Input").
    role: ClassVar[tuple[str, str, str]] = ("", "", "")

    def __post_init__(self) -> None:
        self.check()

    # The S3 member's other fields: (attribute, API field, allowed values).
    options: ClassVar[tuple[tuple[str, str, tuple[str, ...]], ...]] = ()

    def check(self, rendered: bool = False) -> None:
        self._check_location(rendered)

    def _check_location(self, rendered: bool) -> str:
        """Name, URI, path and options checked; return how messages name this one (``inputs['raw']``)."""
        group, api_field, _ = self.role
        if not self.name:
            raise ValueError(f"{group}: every one needs a name ({api_field})")
        where = f"{group}[{self.name!r}]"
        _check_s3(where, self.s3_uri, rendered)
        _check_local_path(where, self.local_path, rendered)
        for attribute, _, allowed in self.options:
            check_choice(f"{where}.{attribute}", getattr(self, attribute), allowed)
        return where

    def s3_options(self) -> dict[str, Any]:
        return {api: getattr(self, attribute) for attribute, api, _ in self.options}

    def to_request(self) -> dict[str, Any]:
        _, name_field, s3_member = self.role
        return {
            name_field: self.name,
            s3_member: {"S3Uri": self.s3_uri, "LocalPath": self.local_path, **self.s3_options()},
        }


@dataclass
class ProcessingInput(_Location):
    """One ``ProcessingInputs`` entry from S3.

    :param name: ``InputName``, unique in the job. (``code`` is the script's, when there is one.)
    :param s3_uri: ``s3://`` prefix (or manifest file) to download. (templated)
    :param local_path: where it lands in the container, under ``/opt/ml/processing/``. (templated)
    :param data_type: ``S3Prefix`` or ``ManifestFile``.
    :param input_mode: ``File`` (copied before the job starts) or ``Pipe`` (streamed).
    :param distribution: ``FullyReplicated`` or ``ShardedByS3Key`` (each instance gets a share).
    :param compression: ``None`` or ``Gzip`` (Gzip needs ``Pipe``, as the service says).
    """

    data_type: str = "S3Prefix"
    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    compression: str = "None"

    role: ClassVar[tuple[str, str, str]] = ("inputs", "InputName", "S3Input")
    options: ClassVar[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
        ("data_type", "S3DataType", DATA_TYPES),
        ("input_mode", "S3InputMode", INPUT_MODES),
        ("distribution", "S3DataDistributionType", DISTRIBUTIONS),
        ("compression", "S3CompressionType", COMPRESSION),
    )

    def check(self, rendered: bool = False) -> None:
        where = self._check_location(rendered)
        if self.compression == "Gzip" and self.input_mode != "Pipe":
            raise ValueError(f"{where}.compression: Gzip is only decompressed in Pipe input_mode")


@dataclass
class ProcessingOutput(_Location):
    """One ``ProcessingOutputConfig.Outputs`` entry to S3.

    :param name: ``OutputName``, unique in the job.
    :param s3_uri: ``s3://`` prefix the directory's files go under. (templated)
    :param local_path: the directory in the container, under ``/opt/ml/processing/``. (templated)
    :param upload_mode: ``EndOfJob`` (default) or ``Continuous``.
    """

    upload_mode: str = "EndOfJob"

    role: ClassVar[tuple[str, str, str]] = ("outputs", "OutputName", "S3Output")
    options: ClassVar[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
        ("upload_mode", "S3UploadMode", UPLOAD_MODES),
    )


@dataclass
class ProcessingScript:
    """The script a processing job runs, shipped as the SageMaker SDK's ``ScriptProcessor`` ships it.

    :param code: a local file (uploaded, content-addressed, under ``code_location``) or an ``s3://``
        URI of one. (templated)
    :param code_location: ``s3://`` prefix a local ``code`` is uploaded under, as
        ``<code_location>/code/<sha256>/<file>``; a retry uploads nothing new. (templated)
    :param command: what runs the script: ``ContainerEntrypoint`` is ``command + [the script]``.
    :param arguments: ``ContainerArguments``, the script's command line. (templated)
    """

    code: str
    code_location: str | None = None
    command: list[str] = field(default_factory=lambda: ["python3"])
    arguments: list[str] = field(default_factory=list)

    template_fields: ClassVar[tuple[str, ...]] = ("code", "code_location", "arguments")

    def __post_init__(self) -> None:
        self.command, self.arguments = list(self.command or []), list(self.arguments or [])
        self.check()

    @property
    def local(self) -> bool:
        return not str(self.code).startswith("s3://")

    def check(self, rendered: bool = False) -> None:
        if not self.code:
            raise ValueError("script.code: set the script to run (a local file or an s3:// URI)")
        if not self.command:
            raise ValueError("script.command: give what runs the script, e.g. ['python3']")
        if self.local and fixed(self.code, rendered):
            if not Path(self.code).is_file():
                raise ValueError(f"script.code: {self.code!r} is not a file")
            if self.code_location is None:
                raise ValueError(
                    "script.code_location: a local code file is uploaded; give the s3:// prefix to put it under"
                )
        location = self.code_location
        if location is not None and fixed(location, rendered) and not str(location).startswith("s3://"):
            raise ValueError(f"script.code_location: {self.code_location!r} is not an s3:// prefix")

    @property
    def file_name(self) -> str:
        return posixpath.basename(str(self.code))

    def entrypoint(self) -> list[str]:
        return [*map(str, self.command), f"{CODE_LOCAL_PATH}/{self.file_name}"]

    def code_input(self) -> dict[str, Any]:
        """The ``code`` input; its S3Uri is the uploaded file's (or the given s3:// one)."""
        uri = self.upload_uri() if self.local else str(self.code)
        return ProcessingInput(CODE_INPUT, uri, CODE_LOCAL_PATH).to_request()

    def upload_uri(self) -> str:
        return f"{str(self.code_location).rstrip('/')}/code/{DIGEST}/{self.file_name}"

    def upload(self) -> Upload | None:
        """The content-addressed upload of a local ``code``; None for an S3 one."""
        if not self.local:
            return None
        return Upload(uri=self.upload_uri(), body=Path(self.code), at=CODE_AT, argument="script.code")
