"""Neo compilation on this machine: the archive's traced TorchScript model, frozen and timed.

As Neo does, the job compiles the one ``.pt``/``.pth`` file of ``model.tar.gz`` (a model traced with
``torch.jit.trace`` and saved with ``torch.jit.save``) for the input shapes of ``DataInputConfig``, in
the lexical order of their names; it runs none of the model's code to get there. The module is loaded
with ``torch.jit.load``, frozen with ``torch.jit.freeze``, checked to give the loaded module's outputs
on a random input of those shapes, and timed (median latency over :data:`TIMED_RUNS` calls). Where the
archive also has ``code/inference.py``, the model its ``model_fn`` serves is timed too ("eager") and
compared with the compiled one, so a stale traced file shows in the report. The artifact goes where
``ModelArtifacts.S3ModelArtifacts`` says, ``<S3OutputLocation>/<model basename>-<target>.tar.gz``,
holding the compiled module under the input file's name (load it with ``torch.jit.load``), ``code/``
and ``compilation-report.json`` with the latencies, which also reach the job's CloudWatch log.

Failures answer as Neo does: ``ClientError: InputConfiguration: No pth file found for PyTorch model``
for an archive without one, ``Framework cannot load PyTorch model`` for a file ``torch.jit.load``
refuses (a state dict, say), ``Invalid PyTorch model or input-shape mismatch`` when the shapes do not
fit; more than one ``.pt``/``.pth`` file is refused in the SageMaker SDK's words (see
:mod:`airflow_dl_provider.presets.compilation`). A ``FrameworkVersion`` Neo does not compile for the
target fails the job too.

Simulated, and said so in the log: the target hardware and the Neo runtime; the module is compiled
with this machine's torch for this CPU, whatever ``TargetDevice``, ``TargetPlatform`` or
``FrameworkVersion`` say.
"""

from __future__ import annotations

import ast
import json
import shutil
import statistics
import tarfile
import time
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.backends.local.hosting import download_model, load_program, split_s3_uri
from airflow_dl_provider.backends.local.state import LocalJob, now_iso
from airflow_dl_provider.backends.local.work import CloudWatchStream, JobFailure, Services
from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.compilation import PYTORCH_MODEL_SUFFIXES, check_framework_version

if TYPE_CHECKING:
    from pathlib import Path

ARN_NOUN = "compilation-job"
LOG_GROUP = "/aws/sagemaker/CompilationJobs"
# CompilationJobStatus is upper case; the backend keeps its common spelling and the client translates.
STATUS_NAMES = {s: s.upper() for s in ("InProgress", "Completed", "Failed", "Stopping", "Stopped")}
REPORT_FILENAME = "compilation-report.json"
WARMUP_RUNS = 5
TIMED_RUNS = 50


def target_name(output_config: dict[str, Any]) -> str:
    """``ml_c5``, or ``LINUX_X86_64[_NVIDIA]`` for a TargetPlatform."""
    if output_config.get("TargetDevice"):
        return str(output_config["TargetDevice"])
    platform = output_config.get("TargetPlatform") or {}
    return "_".join(str(platform[k]) for k in ("Os", "Arch", "Accelerator") if platform.get(k))


def artifact_uri(request: dict[str, Any]) -> str:
    """Where Neo writes the compiled model: ``<S3OutputLocation>/<model basename>-<target>.tar.gz``."""
    output = request["OutputConfig"]
    source = str((request.get("InputConfig") or {}).get("S3Uri", "model.tar.gz")).rstrip("/")
    base = source.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".tar"):
        base = base.removesuffix(suffix)
    return f"{output['S3OutputLocation'].rstrip('/')}/{base or 'model'}-{target_name(output)}.tar.gz"


def input_shapes(data_input_config: str) -> list[tuple[str, list[int]]]:
    """``{"input0": [1, 64]}`` (inputs in the lexical order of their names, as Neo feeds them) or
    ``[[1, 64]]``; JSON, or the Python-literal spelling Neo's docs use."""
    try:
        config = json.loads(data_input_config)
    except ValueError:
        try:
            config = ast.literal_eval(data_input_config)
        except (ValueError, SyntaxError):
            raise JobFailure(f"ClientError: DataInputConfig {data_input_config!r} is not JSON") from None
    if isinstance(config, dict):
        shapes = sorted(config.items())
    elif isinstance(config, list) and config and all(isinstance(s, list) for s in config):
        shapes = [(f"input{i}", s) for i, s in enumerate(config)]
    else:
        raise JobFailure(
            "ClientError: DataInputConfig for PyTorch is a dict of input name to shape, "
            '{"input0": [1, 3, 224, 224]}, or a list of shapes, [[1, 3, 224, 224]]'
        )
    for name, shape in shapes:
        if not (isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape)):
            raise JobFailure(
                f"ClientError: DataInputConfig input {name!r} has shape {shape!r}; use positive ints"
            )
    return [(str(n), list(s)) for n, s in shapes]


def median_ms(call: Any, runs: int = TIMED_RUNS) -> float:
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def _outputs(result: Any) -> list[Any]:
    return list(result) if isinstance(result, tuple | list) else [result]


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def model_file(model_dir: Path) -> Path:
    """The archive's one ``.pt``/``.pth`` file at its top level, where Neo looks for it."""
    found = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in PYTORCH_MODEL_SUFFIXES)
    if not found:
        raise JobFailure(
            "ClientError: InputConfiguration: No pth file found for PyTorch model. Please make sure the "
            "framework you select is correct."
        )
    if len(found) > 1:
        raise JobFailure(
            "ClientError: InputConfiguration: Exactly one .pt or .pth file is allowed for PyTorch models; "
            f"found {', '.join(p.name for p in found)}"
        )
    return found[0]


def _eager_model(model_dir: Path, log: Any) -> Any:
    """The model ``code/inference.py`` serves, when it can serve one; only to compare and time against.

    Neo never runs that code, so code that cannot serve is said in the log and fails nothing.
    """
    import torch

    if not (model_dir / "code" / "inference.py").is_file():
        return None
    try:
        model = load_program(model_dir).model_fn(str(model_dir))
    except Exception as err:
        log(
            f"no eager baseline: code/inference.py cannot serve the model ({_first_line(err)}); Neo does not run it"
        )
        return None
    return model.eval() if isinstance(model, torch.nn.Module) else None


def compile_model(
    model_dir: Path, shapes: list[tuple[str, list[int]]], out_dir: Path, log: Any
) -> dict[str, Any]:
    """Load the traced model, freeze it, check it, time it; write it and ``code/`` to ``out_dir``.

    :param log: where a line for the job's log goes.
    """
    import torch

    source = model_file(model_dir)
    try:
        module = torch.jit.load(str(source), map_location="cpu").eval()
    except Exception as err:
        raise JobFailure(
            f"ClientError: InputConfiguration: Framework cannot load PyTorch model. {_first_line(err)} "
            "(save it with torch.jit.trace and torch.jit.save)"
        ) from err
    generator = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(shape, generator=generator) * 16 for _, shape in shapes)
    with torch.no_grad():
        try:
            expected = _outputs(module(*example))
        except Exception as err:
            raise JobFailure(
                "ClientError: InputConfiguration: Invalid PyTorch model or input-shape mismatch. Make sure that "
                f"inputs are lexically ordered and of the correct dimensionality. ({_first_line(err)})"
            ) from err
        compiled = torch.jit.freeze(module)
        for before, after in zip(expected, _outputs(compiled(*example)), strict=True):
            if not torch.allclose(before, after, rtol=1e-4, atol=1e-5):
                raise JobFailure("ClientError: the frozen model's outputs differ from the traced model's")
        report: dict[str, Any] = {"input_median_ms": round(median_ms(lambda: module(*example)), 4)}
        eager = _eager_model(model_dir, log)
        if eager is not None:
            report["eager_median_ms"] = round(median_ms(lambda: eager(*example)), 4)
            report["matches_eager"] = all(
                torch.allclose(a, b, rtol=1e-4, atol=1e-5)
                for a, b in zip(_outputs(eager(*example)), expected, strict=True)
            )
        compiled_ms = median_ms(lambda: compiled(*example))
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.jit.save(compiled, str(out_dir / source.name))
    if (model_dir / "code").is_dir():
        shutil.copytree(model_dir / "code", out_dir / "code", ignore=shutil.ignore_patterns("__pycache__"))
    baseline = report.get("eager_median_ms", report["input_median_ms"])
    return {
        "model_file": source.name,
        "method": "torch.jit.load + torch.jit.freeze (TorchScript)",
        "torch_version": torch.__version__,
        "input_shapes": dict(shapes),
        "runs": TIMED_RUNS,
        "threads": torch.get_num_threads(),
        **report,
        "compiled_median_ms": round(compiled_ms, 4),
        "speedup": round(baseline / compiled_ms, 3) if compiled_ms > 0 else None,
    }


def run(job: LocalJob, services: Services) -> None:
    request = job.request()
    stream = CloudWatchStream(services.logs, LOG_GROUP, job.name)

    def log(message: str) -> None:
        stream.put([(int(time.time() * 1000), message)])

    input_config = request.get("InputConfig") or {}
    framework = input_config.get("Framework")
    if framework != "PYTORCH":
        raise JobFailure(f"ClientError: the local backend compiles PYTORCH models only, not {framework}")
    if not input_config.get("DataInputConfig"):
        raise JobFailure(
            'ClientError: DataInputConfig: PyTorch models need the input shapes, e.g. {"input0": [1, 64]}'
        )
    shapes = input_shapes(input_config["DataInputConfig"])
    try:
        version = check_framework_version(
            framework, input_config.get("FrameworkVersion"), request["OutputConfig"].get("TargetDevice")
        )
    except PreflightError as err:
        raise JobFailure(f"ClientError: {err}") from None
    target = target_name(request["OutputConfig"])
    job.update(CompilationStartTime=now_iso())
    log(
        f"local backend (simulated target): compiling the archive's TorchScript model for {target} as "
        f"PyTorch {version}, with this machine's torch for this CPU; no Neo runtime, no target hardware"
    )
    work = job.work
    model_dir = download_model(services.s3, input_config["S3Uri"], work / "model")
    if services.stop.is_set():
        job.transition("Stopped", "stopped", CompilationJobStatus="Stopped")
        return
    out_dir = work / "compiled"
    report = {"target": target, "framework": framework, **compile_model(model_dir, shapes, out_dir, log)}
    (out_dir / REPORT_FILENAME).write_text(json.dumps(report, indent=1, sort_keys=True))
    baseline = (
        f"eager {report['eager_median_ms']} ms"
        if "eager_median_ms" in report
        else f"traced {report['input_median_ms']} ms"
    )
    log(
        f"compiled {report['model_file']}; latency median over {report['runs']} runs on this CPU: {baseline}, "
        f"compiled {report['compiled_median_ms']} ms (speedup x{report['speedup']})"
    )
    if report.get("matches_eager") is False:
        log(f"warning: {report['model_file']} does not compute what code/inference.py's model_fn serves")
    uri = artifact_uri(request)
    archive = work / "compiled.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(out_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(out_dir)), recursive=False)
    bucket, key = split_s3_uri(uri)
    services.s3.upload_file(str(archive), bucket, key)
    log(f"compiled model written to {uri}")
    job.update(CompilationJobStatus="Completed", CompilationEndTime=now_iso())


def initial_state(request: dict[str, Any], name: str) -> dict[str, Any]:
    # Describe carries FailureReason and ModelArtifacts from the first call on (required members).
    return {"FailureReason": "", "ModelArtifacts": {"S3ModelArtifacts": artifact_uri(request)}}
