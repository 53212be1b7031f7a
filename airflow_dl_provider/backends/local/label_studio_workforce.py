"""The declared simulated workforce of the local Label Studio server, answering through its REST API.

Nobody labels anything here. A project declares the workforce in its description, where
:class:`~airflow_dl_provider.operators.label_studio.LabelStudioLabelingOperator` writes its ``tags``
as ``key=value`` lines: ``airflow-dl:simulated-truth`` (the ``s3://`` URI of a JSON object mapping
each object to its class name, or names) and ``airflow-dl:simulated-error-rate`` (default 0.05). The
rules are the local Ground Truth workforce's (:class:`.labeling_workforce.SimulatedWorkforce`): each
simulated annotator answers from the hidden truth and picks another label at random with the error
rate. Each of the project's ``maximum_annotations`` annotators is a Label Studio user
(``simulated-annotator-<n>@airflow-dl.local``), and its answer is an annotation created through
``POST /api/tasks/{id}/annotations/`` with ``completed_by`` naming it, as the Label Studio UI
creates one for a person. A draw is seeded by the project, the object and the annotator, so a
restarted workforce answers as it would have.

Every line this process logs says that the workforce is simulated.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_dl_provider.backends.local.labeling import DEFAULT_ERROR_RATE, ERROR_RATE_TAG, TRUTH_TAG
from airflow_dl_provider.backends.local.labeling_workforce import SimulatedWorkforce
from airflow_dl_provider.label_studio.api import LabelStudioApiError, LabelStudioClient, is_labeled
from airflow_dl_provider.label_studio.configs import CONTROL, object_key

POLL_SECONDS = 0.5
ANNOTATOR_EMAIL = "simulated-annotator-{n}@airflow-dl.local"


def declaration(description: str | None) -> dict[str, str]:
    """The ``airflow-dl:`` ``key=value`` lines of a project description."""
    found = {}
    for line in (description or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("airflow-dl:"):
            found[key] = value.strip()
    return found


def choices(label_config: str) -> tuple[list[str], bool, str]:
    """The config's ``<Choices name="label">``: its label names, multi-label or not, its ``toName``."""
    root = ElementTree.fromstring(label_config)
    for element in root.iter("Choices"):
        if element.get("name") == CONTROL:
            names = [str(c.get("value")) for c in element.iter("Choice")]
            return names, element.get("choice") == "multiple", str(element.get("toName"))
    raise ValueError(f'label config has no <Choices name="{CONTROL}">: not a project of this provider')


def task_type_of(target: str) -> str:
    """A task type whose object tag is ``target`` (``image`` or ``text``): enough to find the object."""
    return "text_classification" if target == "text" else "image_classification"


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} simulated workforce: {message}", flush=True)


class Workforce:
    """Annotates every unlabeled task of every declaring project, as its simulated annotators."""

    def __init__(self, client: LabelStudioClient, s3: Any) -> None:
        self.client, self.s3 = client, s3
        self.annotators: dict[int, int] = {}
        self.truths: dict[str, dict[str, Any]] = {}
        self.unanswerable: set[tuple[int, int]] = set()

    def annotator(self, n: int) -> int:
        """The user id of simulated annotator ``n`` (1-based), created on first use."""
        if n not in self.annotators:
            email = ANNOTATOR_EMAIL.format(n=n)
            users = {u["email"]: int(u["id"]) for u in self.client.users()}
            if email not in users:
                created = self.client.create_user(email, "Simulated", f"Annotator {n}")
                users[email] = int(created["id"])
                _say(f"created the Label Studio user {email} (a simulated annotator, not a person)")
            self.annotators[n] = users[email]
        return self.annotators[n]

    def truth(self, uri: str) -> dict[str, Any]:
        if uri not in self.truths:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            self.truths[uri] = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return self.truths[uri]

    def answer_project(self, project: dict[str, Any], declared: dict[str, str]) -> int:
        """Annotate what the project still needs; return how many annotations were created.

        The annotators work side by side, each in its own thread with its own client, as people do.
        """
        labels, multi_label, target = choices(project["label_config"])
        truth = self.truth(declared[TRUTH_TAG])
        error_rate = float(declared.get(ERROR_RATE_TAG, DEFAULT_ERROR_RATE))
        workers = max(1, int(project.get("maximum_annotations") or 1))
        users = {n: self.annotator(n) for n in range(1, workers + 1)}
        tasks = [t for t in self.client.tasks(int(project["id"])) if not is_labeled(t)]

        def work(n: int) -> int:
            client = LabelStudioClient(self.client.url, self.client.token)
            made = 0
            # Each annotator starts at its own place in the queue, as people do.
            start = (n - 1) * len(tasks) // len(users)
            for task in tasks[start:] + tasks[:start]:
                done = {int(a["id"]) if isinstance(a, dict) else int(a) for a in task.get("annotators") or []}
                if users[n] in done or (int(task["id"]), n) in self.unanswerable:
                    continue
                key = object_key(task_type_of(target), task)
                seed = int(hashlib.sha256(f"{project['title']}\x1f{key}\x1f{n}".encode()).hexdigest()[:8], 16)
                outcome = SimulatedWorkforce(
                    labels, truth, error_rate=error_rate, workers=1, multi_label=multi_label, seed=seed
                ).label(key)
                if outcome is None:
                    self.unanswerable.add((int(task["id"]), n))
                    _say(
                        f"project {project['title']}: the hidden truth has no answer for {key}; left for a person"
                    )
                    continue
                names = [labels[i] for i in outcome.answers[0]]
                result = [
                    {"from_name": CONTROL, "to_name": target, "type": "choices", "value": {"choices": names}}
                ]
                client.create_annotation(int(task["id"]), result, completed_by=users[n], lead_time=1.0)
                made += 1
            return made

        with ThreadPoolExecutor(workers) as pool:
            return sum(pool.map(work, users))

    def run_once(self) -> int:
        created = 0
        for project in self.client.projects():
            declared = declaration(project.get("description"))
            if TRUTH_TAG not in declared:
                continue
            labeled, total = self.client.labeled(int(project["id"]))
            if labeled >= total:
                continue
            made = self.answer_project(project, declared)
            if made:
                _say(
                    f"project {project['title']} (id {project['id']}): {made} annotation(s) from the hidden "
                    f"truth {declared[TRUTH_TAG]}, error rate {declared.get(ERROR_RATE_TAG, DEFAULT_ERROR_RATE)}"
                )
            created += made
        return created


def main(argv: list[str] | None = None) -> int:
    import boto3

    from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS, REGION

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--s3-endpoint", required=True)
    args = parser.parse_args(argv)
    client = LabelStudioClient(args.url, os.environ["AIRFLOW_DL_LABEL_STUDIO_TOKEN"])
    s3 = boto3.client(
        "s3",
        endpoint_url=args.s3_endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=LOCAL_CREDENTIALS["password"],
    )
    workforce = Workforce(client, s3)
    _say(f"started for {args.url}: annotators answer from each project's declared hidden truth")
    while True:
        try:
            if not workforce.run_once():
                time.sleep(POLL_SECONDS)
        except (LabelStudioApiError, OSError, ValueError) as err:
            _say(f"{err}; trying again")
            time.sleep(POLL_SECONDS * 4)


if __name__ == "__main__":
    sys.exit(main())
