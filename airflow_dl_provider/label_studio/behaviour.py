"""What Label Studio really does, recorded as data with its source (as ``service_behaviour`` does for AWS).

Checked against Label Studio 1.23.2 (``label-studio`` on PyPI, its Django source) and its docs. The
operator, its trigger and the local backend read these rows; the local server is a real Label Studio,
so nothing here is simulated, only written down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCS_API = "https://api.labelstud.io/api-reference/introduction/getting-started"
DOCS_TOKENS = "https://labelstud.io/guide/access_tokens"
DOCS_S3 = "https://labelstud.io/guide/storage#Amazon-S3"
DOCS_IMPORT = "https://labelstud.io/guide/tasks#Basic-Label-Studio-JSON-format"
DOCS_PREDICTIONS = "https://labelstud.io/guide/predictions"
DOCS_EXPORT = "https://labelstud.io/guide/export#Label-Studio-JSON-format-of-annotated-tasks"
DOCS_PROJECT_SETTINGS = "https://labelstud.io/guide/setup_project#Set-up-annotation-settings-for-your-project"
DOCS_START = "https://labelstud.io/guide/start#Command-line-arguments-for-starting-Label-Studio"
DOCS_SECURITY = "https://labelstud.io/guide/security#Secure-access-to-cloud-storage"

# Project.title is a CharField(max_length=settings.PROJECT_TITLE_MAX_LEN), 50 (core/settings/base.py).
PROJECT_TITLE_MAX_LENGTH = 50
# GET /api/projects?title= is a django-filter CharFilter(lookup_expr="icontains") (projects/api.py):
# a title names a project only after an exact comparison on our side.
TITLE_FILTER_IS_SUBSTRING = True
# Project.sampling choices (projects/models.py); the uncertainty stream serves lowest prediction score first.
SAMPLING_UNCERTAINTY = "Uncertainty sampling"
# A personal access token is a JWT refresh token; simplejwt's default access lifetime is 5 minutes.
ACCESS_TOKEN_REFRESH_SECONDS = 240.0
_LEGACY_TOKEN = re.compile(r"^[0-9a-zA-Z_-]{6,}$")
# With SSRF protection on (SSRF_PROTECTION_ENABLED, the default), a storage whose endpoint resolves to
# loopback is refused: 403 "URL resolves to a reserved network address (block: 127.0.0.0/8)". The local
# server runs with it off, since its S3 is the embedded server on 127.0.0.1.
SSRF_REFUSAL = "URL resolves to a reserved network address"

# Task.is_labeled (and the project's finished_task_number, which counts it) is updated per annotation
# from a count taken inside that request: annotations of one task saved at the same moment can leave it
# false with every annotation there (seen with three annotators at once; tasks/models.py carries "a
# workaround for fixing not consistent is_labeled flag"). Labeled tasks are counted from each task's
# total_annotations against its overlap instead.
IS_LABELED_CAN_LAG = True


@dataclass(frozen=True)
class Call:
    """One REST call: method, path, what it answers, and its source."""

    name: str
    method: str
    path: str
    answers: str
    source: str


CALLS = (
    Call("whoami", "GET", "/api/current-user/whoami", "the token's user: id, email", DOCS_API),
    Call(
        "token refresh",
        "POST",
        "/api/token/refresh/",
        '{"access": <JWT>} for {"refresh": <PAT>}',
        DOCS_TOKENS,
    ),
    Call(
        "projects",
        "GET",
        "/api/projects",
        "paginated {count, next, results}; ?title= matches substrings (icontains)",
        DOCS_API,
    ),
    Call(
        "create project",
        "POST",
        "/api/projects",
        "201 with id; title at most 50 characters; maximum_annotations is the overlap per task",
        DOCS_PROJECT_SETTINGS,
    ),
    Call(
        "project",
        "GET",
        "/api/projects/{id}",
        "task_number, finished_task_number (tasks with is_labeled: annotations >= overlap), "
        "num_tasks_with_annotations, total_annotations_number",
        DOCS_API,
    ),
    Call(
        "S3 source storage",
        "POST",
        "/api/storages/s3",
        "bucket, prefix, presign (presigned GET URLs for s3:// task data), s3_endpoint; 403 for a "
        "loopback endpoint while SSRF protection is on",
        DOCS_S3,
    ),
    Call(
        "tasks",
        "GET",
        "/api/tasks?project={id}&fields=all",
        "{total, tasks: [{id, data, meta, annotators, is_labeled, total_annotations}]}",
        DOCS_API,
    ),
    Call(
        "import",
        "POST",
        "/api/projects/{id}/import",
        "tasks as [{data, meta, predictions: [{model_version, score, result}]}]; {task_count, prediction_count}",
        DOCS_IMPORT,
    ),
    Call(
        "annotation",
        "POST",
        "/api/tasks/{id}/annotations/",
        "201; completed_by may name another user of the organization, else the token's user",
        DOCS_API,
    ),
    Call(
        "export",
        "GET",
        "/api/projects/{id}/export?exportType=JSON&download_all_tasks=true",
        "[{id, data, meta, annotations: [{completed_by, result, was_cancelled, created_at}], predictions}]",
        DOCS_EXPORT,
    ),
    Call("users", "POST", "/api/users/", "creates a user (an administrator's token)", DOCS_API),
)


def token_kind(token: str) -> str:
    """``pat`` for a personal access token (a JWT: three dot-separated parts), else ``legacy``."""
    if token.count(".") == 2 and token.startswith("eyJ"):
        return "pat"
    if not _LEGACY_TOKEN.match(token):
        raise ValueError(
            "token: neither a personal access token (a JWT) nor a legacy token; copy it from "
            "Label Studio's Account & Settings page"
        )
    return "legacy"
