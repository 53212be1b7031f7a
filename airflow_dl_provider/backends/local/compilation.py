"""Neo compilation on this machine: a PyTorch model traced to TorchScript, timed before and after.

The model is loaded with its own ``code/inference.py`` ``model_fn``, traced with ``torch.jit.trace`` on
an example input shaped from ``DataInputConfig``, checked to give the eager model's outputs, and timed
(median latency over :data:`TIMED_RUNS` calls, eager vs traced, on this CPU). The artifact goes where
``ModelArtifacts.S3ModelArtifacts`` says, ``<S3OutputLocation>/<model basename>-<target>.tar.gz``,
holding ``compiled.pt`` (load it with ``torch.jit.load``, as a Neo ``model_fn`` does), ``code/`` and
``compilation-report.json`` with the latencies, which also reach the job's CloudWatch log.

Why TorchScript and not ONNX: it needs nothing beyond torch (onnxruntime is not a dependency) and the
traced module runs in the same process it is checked in. Simulated, and said so in the log: the target
hardware; the trace is for this CPU whatever ``TargetDevice`` or ``TargetPlatform`` says.
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

if TYPE_CHECKING:
    from pathlib import Path

ARN_NOUN = "compilation-job"
LOG_GROUP = "/aws/sagemaker/CompilationJobs"
# CompilationJobStatus is upper case; the backend keeps its common spelling and the client translates.
STATUS_NAMES = {s: s.upper() for s in ("InProgress", "Completed", "Failed", "Stopping", "Stopped")}
COMPILED_FILENAME = "compiled.pt"
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
    """``{"input0": [1, 64]}`` or ``[[1, 64]]`` (JSON, or the Python-literal spelling Neo's docs use)."""
    try:
        config = json.loads(data_input_config)
    except ValueError:
        try:
            config = ast.literal_eval(data_input_config)
        except (ValueError, SyntaxError):
            raise JobFailure(f"ClientError: DataInputConfig {data_input_config!r} is not JSON") from None
    if isinstance(config, dict):
        shapes = list(config.items())
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


def compile_model(model_dir: Path, shapes: list[tuple[str, list[int]]], out_dir: Path) -> dict[str, Any]:
    """Trace the model, check it, time it; write ``compiled.pt`` and ``code/`` to ``out_dir``."""
    import torch

    module = load_program(model_dir)
    model = module.model_fn(str(model_dir))
    if not isinstance(model, torch.nn.Module):
        raise JobFailure(f"ClientError: model_fn returned {type(model).__name__}, not a torch.nn.Module")
    model.eval()
    generator = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(shape, generator=generator) for _, shape in shapes)
    with torch.no_grad():
        try:
            traced = torch.jit.trace(model, example)
        except Exception as err:
            raise JobFailure(f"ClientError: the model cannot be traced with inputs {shapes}: {err}") from err
        traced = torch.jit.freeze(traced)
        for eager_out, traced_out in zip(_outputs(model(*example)), _outputs(traced(*example)), strict=True):
            if not torch.allclose(eager_out, traced_out, rtol=1e-4, atol=1e-5):
                raise JobFailure("ClientError: the traced model's outputs differ from the eager model's")
        eager_ms = median_ms(lambda: model(*example))
        compiled_ms = median_ms(lambda: traced(*example))
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(out_dir / COMPILED_FILENAME))
    shutil.copytree(model_dir / "code", out_dir / "code", ignore=shutil.ignore_patterns("__pycache__"))
    return {
        "method": "torch.jit.trace + torch.jit.freeze (TorchScript)",
        "torch_version": torch.__version__,
        "input_shapes": dict(shapes),
        "runs": TIMED_RUNS,
        "threads": torch.get_num_threads(),
        "eager_median_ms": round(eager_ms, 4),
        "compiled_median_ms": round(compiled_ms, 4),
        "speedup": round(eager_ms / compiled_ms, 3) if compiled_ms > 0 else None,
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
        raise JobFailure("ClientError: the local backend needs DataInputConfig to shape the trace input")
    shapes = input_shapes(input_config["DataInputConfig"])
    target = target_name(request["OutputConfig"])
    job.update(CompilationStartTime=now_iso())
    log(
        f"local backend (simulated target): compiling for {target} as TorchScript for this CPU; "
        "no Neo runtime, no target hardware"
    )
    work = job.work
    model_dir = download_model(services.s3, input_config["S3Uri"], work / "model")
    if services.stop.is_set():
        job.transition("Stopped", "stopped", CompilationJobStatus="Stopped")
        return
    out_dir = work / "compiled"
    report = {"target": target, "framework": framework, **compile_model(model_dir, shapes, out_dir)}
    (out_dir / REPORT_FILENAME).write_text(json.dumps(report, indent=1, sort_keys=True))
    log(
        f"latency median over {report['runs']} runs on this CPU: eager {report['eager_median_ms']} ms, "
        f"compiled {report['compiled_median_ms']} ms (speedup x{report['speedup']})"
    )
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
