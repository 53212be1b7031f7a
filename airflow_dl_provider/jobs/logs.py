"""Copy a job's CloudWatch log lines into the task log.

A cursor (stream name -> next forward token) is JSON-safe, so it survives a deferral: the task
resumed after the trigger fires copies the lines it has not copied yet, and none twice.
"""

from __future__ import annotations

from typing import Any

LogCursor = dict[str, str]

_MAX_PAGES_PER_STREAM = 50


class JobLogStreamer:
    """Read the log streams of one job from a CloudWatch Logs client and hand each line to ``emit``.

    :param logs_client: a boto3 ``logs`` client built from the same connection as the job's client.
    :param log_group: e.g. ``/aws/sagemaker/TrainingJobs``.
    :param job_name: streams are named ``<job_name>/<host>-<epoch>``.
    """

    def __init__(self, logs_client: Any, log_group: str, job_name: str, log: Any) -> None:
        self.client = logs_client
        self.log_group = log_group
        self.job_name = job_name
        self.log = log

    def _streams(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self.log_group, "logStreamNamePrefix": f"{self.job_name}/"}
        while True:
            page = self.client.describe_log_streams(**kwargs)
            names.extend(s["logStreamName"] for s in page.get("logStreams", []))
            if not page.get("nextToken"):
                return names
            kwargs["nextToken"] = page["nextToken"]

    def copy_new_lines(self, cursor: LogCursor) -> int:
        """Emit every line not yet emitted, advance ``cursor`` in place, return how many lines."""
        try:
            streams = self._streams()
        except Exception as err:  # no group yet, throttling: logs are best effort, the job is not
            if "ResourceNotFound" not in type(err).__name__ + str(err):
                self.log.debug("cannot list log streams of %s: %s", self.job_name, err)
            return 0
        copied = 0
        for stream in streams:
            host = stream.split("/", 1)[-1].rsplit("-", 1)[0]
            for _ in range(_MAX_PAGES_PER_STREAM):
                kwargs: dict[str, Any] = {
                    "logGroupName": self.log_group,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if stream in cursor:
                    kwargs["nextToken"] = cursor[stream]
                page = self.client.get_log_events(**kwargs)
                for event in page.get("events", []):
                    self.log.info("[%s] %s", host, event["message"].rstrip("\n"))
                    copied += 1
                token = page.get("nextForwardToken")
                if not token or token == cursor.get(stream):
                    break
                cursor[stream] = token
                if not page.get("events"):
                    break
        return copied
