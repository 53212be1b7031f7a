"""``stack validate``: cfn-lint on every rendered template, and checkov where it is installed.

cfn-lint runs in this process (it is a dev dependency), informational rules included: a finding of
any severity is a problem. checkov pins versions Airflow conflicts with, so it lives in its own
virtualenv (``make tools`` builds ``.venv-tools``) and runs as a program found through
``$AIRFLOW_DL_CHECKOV``, then ``.venv-tools/bin/checkov``, then ``PATH``. It runs once over a folder
of rendered variants (one subfolder each): most of its time is start-up, so one run for all of them
costs about what one variant does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from airflow_dl_provider.stacks.render import StackError

CHECKOV_ENV = "AIRFLOW_DL_CHECKOV"
DEFAULT_REGIONS = ("us-east-1",)


@dataclass(frozen=True)
class Finding:
    """One problem in one template; ``tool`` is ``cfn-lint`` or ``checkov``."""

    tool: str
    template: str
    rule: str
    severity: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line}: {self.tool} {self.rule} [{self.severity}] {self.message}"


def cfn_lint(
    path: Path, regions: tuple[str, ...] = DEFAULT_REGIONS, name: str | None = None
) -> list[Finding]:
    """cfn-lint's errors, warnings and informational findings in ``path``.

    :param name: how findings name the template (default: the file name).
    """
    try:
        from cfnlint.api import lint
        from cfnlint.config import ManualArgs
    except ImportError:
        raise StackError("stack validate: cfn-lint is not installed; pip install cfn-lint") from None
    matches = lint(path.read_text(), config=ManualArgs(regions=list(regions), include_checks=["I"]))
    return [
        Finding("cfn-lint", name or path.name, m.rule.id, m.rule.severity, m.linenumber, m.message)
        for m in matches
    ]


def find_checkov() -> str | None:
    """The checkov program, or None when it is not installed anywhere we look."""
    for candidate in (os.environ.get(CHECKOV_ENV), str(Path(".venv-tools/bin/checkov").resolve())):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("checkov")


def checkov(folder: Path, program: str) -> list[Finding]:
    """checkov's failed checks on every template under ``folder`` (subfolders included); waived ones
    (``Metadata.checkov.skip`` with a comment in the template) are not failures. Findings name the
    template by its path below ``folder``.
    """
    # --skip-download: no call to the Prisma Cloud API, which a CI runner may not reach.
    proc = subprocess.run(
        [
            program,
            "-d",
            str(folder),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise StackError(f"stack validate: checkov exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    findings = []
    for part in reports:
        for failed in part.get("results", {}).get("failed_checks", []):
            findings.append(
                Finding(
                    "checkov",
                    str(failed.get("file_path", "?")).lstrip("/"),
                    failed["check_id"],
                    "error",
                    (failed.get("file_line_range") or [0])[0],
                    f"{failed.get('check_name', '')} ({failed.get('resource', '')})",
                )
            )
    return findings


def validate(folder: Path, *, require_checkov: bool = False) -> tuple[list[Finding], str]:
    """Lint every ``*.yaml`` under ``folder`` (one rendered variant, or one subfolder per variant).

    cfn-lint reads each distinct template text once: variants differ only in root.yaml's defaults,
    so a nested template that is byte-identical across them is linted once (cfn-lint checks every
    combination of its conditions itself).

    :return: the findings, each naming its template by its path below ``folder``, and a line saying
        which tools ran (checkov is skipped, with the reason, when it is not installed and
        ``require_checkov`` is False).
    """
    templates = sorted(folder.rglob("*.yaml"))
    if not templates:
        raise StackError(
            f"stack validate: {folder} has no *.yaml templates; run 'airflow-dl stack render' first"
        )
    linted: set[str] = set()
    findings = []
    for path in templates:
        text = path.read_text()
        if text in linted:
            continue
        linted.add(text)
        findings += cfn_lint(path, name=path.relative_to(folder).as_posix())
    program = find_checkov()
    if program is None:
        if require_checkov:
            raise StackError(f"stack validate: checkov not found; run 'make tools' or set {CHECKOV_ENV}")
        return (
            findings,
            f"cfn-lint on {len(templates)} templates ({len(linted)} distinct); "
            "checkov not installed (make tools), skipped",
        )
    findings += checkov(folder, program)
    return findings, f"cfn-lint ({len(linted)} distinct) and checkov on {len(templates)} templates"
