"""Copy a job's CloudWatch log lines into the task log.

A cursor (stream name -> next forward token) is JSON-safe, so it survives a deferral: the task
resumed after the trigger fires copies the lines it has not copied yet, and none twice.

Logs are best effort, the job is not: a missing group or stream (the job has not written yet) is
quiet, and a throttled or failing CloudWatch Logs call never fails the task. It warns once, stops
copying for this poll and resumes at the next one from the cursor, so no line is lost or repeated.
"""

from __future__ import annotations

from typing import Any

from airflow_dl_provider import service_behaviour

LogCursor = dict[str, str]

_MAX_PAGES_PER_STREAM = 50


class JobLogStreamer:
    """Read the log streams of one job from a CloudWatch Logs client and hand each line to ``log``.

    :param logs_client: a boto3 ``logs`` client built from the same connection as the job's client.
    :param kind_key: the job kind (``training``); its log group and stream names come from
        :data:`~airflow_dl_provider.service_behaviour.LOG_STREAMS`.
    :param job_name: the job whose streams are read.
    """

    def __init__(self, logs_client: Any, kind_key: str, job_name: str, log: Any) -> None:
        self.client = logs_client
        self.log_group = service_behaviour.LOG_STREAMS[kind_key].group
        self.prefix, self.exact = service_behaviour.log_stream_prefix(kind_key, job_name)
        self.job_name = job_name
        self.log = log
        self._warned = False

    def _streams(self) -> list[str]:
        if self.exact:
            # One stream named after the job (labeling, compilation); a prefix search would also
            # return the streams of `<job>-2`.
            return [self.prefix]
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self.log_group, "logStreamNamePrefix": self.prefix}
        while True:
            page = self.client.describe_log_streams(**kwargs)
            names.extend(s["logStreamName"] for s in page.get("logStreams", []))
            if not page.get("nextToken"):
                return names
            kwargs["nextToken"] = page["nextToken"]

    def _label(self, stream: str) -> str:
        if self.exact:
            return stream
        # <job>/algo-1-1700000000 -> algo-1
        return stream[len(self.prefix) :].rsplit("-", 1)[0]

    def _skip(self, operation: str, err: Exception) -> None:
        """A call failed: say so once per streamer (not per poll); the next poll resumes from the cursor."""
        if service_behaviour.is_not_found(operation, err):
            return  # the job has not written its first line yet
        code, message = service_behaviour.error_of(err)
        detail = f"{code}: {message}" if code else f"{type(err).__name__}: {err}"
        if self._warned:
            self.log.debug("CloudWatch Logs %s for %s failed again (%s)", operation, self.job_name, detail)
            return
        self._warned = True
        what = "throttled" if service_behaviour.is_throttling(err) else "failed"
        self.log.warning(
            "CloudWatch Logs %s %s for %s (%s); the job is unaffected, log copying resumes at the next poll",
            operation,
            what,
            self.job_name,
            detail,
        )

    def copy_new_lines(self, cursor: LogCursor) -> int:
        """Emit every line not yet emitted, advance ``cursor`` in place, return how many lines."""
        try:
            streams = self._streams()
        except Exception as err:
            self._skip("DescribeLogStreams", err)
            return 0
        copied = 0
        for stream in streams:
            label = self._label(stream)
            for _ in range(_MAX_PAGES_PER_STREAM):
                kwargs: dict[str, Any] = {
                    "logGroupName": self.log_group,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if stream in cursor:
                    kwargs["nextToken"] = cursor[stream]
                try:
                    page = self.client.get_log_events(**kwargs)
                except Exception as err:
                    # The cursor holds what was emitted; the rest comes at the next poll.
                    self._skip("GetLogEvents", err)
                    return copied
                for event in page.get("events", []):
                    self.log.info("[%s] %s", label, event["message"].rstrip("\n"))
                    copied += 1
                token = page.get("nextForwardToken")
                if not token or token == cursor.get(stream):
                    break
                cursor[stream] = token
                if not page.get("events"):
                    break
        return copied
