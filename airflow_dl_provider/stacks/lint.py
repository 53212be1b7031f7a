"""``stack validate``: cfn-lint on every rendered template, and checkov where it is installed.

cfn-lint runs in this process (it is a dev dependency). checkov pins versions Airflow conflicts with,
so it lives in its own virtualenv (``make tools`` builds ``.venv-tools``) and runs as a program found
through ``$AIRFLOW_DL_CHECKOV``, then ``.venv-tools/bin/checkov``, then ``PATH``.
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


def cfn_lint(path: Path, regions: tuple[str, ...] = DEFAULT_REGIONS) -> list[Finding]:
    """cfn-lint errors and warnings in ``path`` (informational matches are not problems)."""
    try:
        from cfnlint.api import lint
        from cfnlint.config import ManualArgs
    except ImportError:
        raise StackError("stack validate: cfn-lint is not installed; pip install cfn-lint") from None
    matches = lint(path.read_text(), config=ManualArgs(regions=list(regions)))
    return [
        Finding("cfn-lint", path.name, m.rule.id, m.rule.severity, m.linenumber, m.message)
        for m in matches
        if m.rule.severity in ("error", "warning")
    ]


def find_checkov() -> str | None:
    """The checkov program, or None when it is not installed anywhere we look."""
    for candidate in (os.environ.get(CHECKOV_ENV), str(Path(".venv-tools/bin/checkov").resolve())):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("checkov")


def checkov(folder: Path, program: str) -> list[Finding]:
    """checkov's failed checks on every template in ``folder``; waived ones (``Metadata.checkov.skip``
    with a comment in the template) are not failures.
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
                    Path(failed.get("file_path", "?")).name,
                    failed["check_id"],
                    "error",
                    (failed.get("file_line_range") or [0])[0],
                    f"{failed.get('check_name', '')} ({failed.get('resource', '')})",
                )
            )
    return findings


def validate(folder: Path, *, require_checkov: bool = False) -> tuple[list[Finding], str]:
    """Lint every ``*.yaml`` in ``folder``.

    :return: the findings, and a line saying which tools ran (checkov is skipped, with the reason,
        when it is not installed and ``require_checkov`` is False).
    """
    templates = sorted(folder.glob("*.yaml"))
    if not templates:
        raise StackError(
            f"stack validate: {folder} has no *.yaml templates; run 'airflow-dl stack render' first"
        )
    findings = [finding for path in templates for finding in cfn_lint(path)]
    program = find_checkov()
    if program is None:
        if require_checkov:
            raise StackError(f"stack validate: checkov not found; run 'make tools' or set {CHECKOV_ENV}")
        return (
            findings,
            f"cfn-lint on {len(templates)} templates; checkov not installed (make tools), skipped",
        )
    findings += checkov(folder, program)
    return findings, f"cfn-lint and checkov on {len(templates)} templates"
