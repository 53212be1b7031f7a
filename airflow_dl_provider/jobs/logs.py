"""Copy a job's CloudWatch log lines into the task log.

A cursor (stream name -> next forward token) is JSON-safe, so it survives a deferral: the task
resumed after the trigger fires copies the lines it has not copied yet, and none twice.

Calls are spent only where lines can be (:meth:`JobLogStreamer.follow`): no DescribeLogStreams before
a host runs the job's container, and none once each host's stream is known; GetLogEvents only on
known streams, from the cursor's token, one page per stream per look while the job runs.

Logs are best effort, the job is not: a missing group or stream (the job has not written yet) is
quiet, and a throttled or failing CloudWatch Logs call never fails the task. It warns once, stops
copying for this poll and resumes at the next one from the cursor, so no line is lost or repeated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.jobs.kinds import job_kind

if TYPE_CHECKING:
    from collections.abc import Mapping

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
        self.kind_key = kind_key
        self.log = log
        self._warned = False
        self._listed: set[str] = set()
        #: A call of the last copy failed (not a missing stream): lines may be left to copy.
        self.failed = False

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
        self.failed = True
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

    def follow(self, description: Mapping[str, Any], cursor: LogCursor) -> int:
        """At one look at the job: copy what its streams have that ``cursor`` has not, cheaply.

        Nothing before a host runs the job's container (:meth:`~.kinds.JobKind.host_started`). Streams
        are listed only while fewer are known than the job has hosts, and each known stream is read
        once (again only when the page came back full); once the job has ended, everything left is
        copied (:meth:`copy_new_lines`).
        """
        kind = job_kind(self.kind_key)
        self.failed = False
        if not kind.host_started(description):
            return 0
        if str(description.get(kind.status_field)) in kind.terminal:
            return self.copy_new_lines(cursor)
        known = self._known(cursor)
        hosts = kind.hosts(description)
        if not self.exact and (len(known) < hosts if hosts else not known):
            known = self._list(cursor)
        return self._read(known, cursor, drain=False)

    def copy_new_lines(self, cursor: LogCursor) -> int:
        """Emit every line not yet emitted, advance ``cursor`` in place, return how many lines.

        The streams are listed once more (a host that restarted writes a new stream) and each is read
        until GetLogEvents hands back the token it was given: the end of the stream.
        """
        self.failed = False
        known = self._known(cursor) if self.exact else self._list(cursor)
        return self._read(known, cursor, drain=True)

    def _known(self, cursor: LogCursor) -> list[str]:
        if self.exact:
            return [self.prefix]
        return sorted(self._listed | {s for s in cursor if s.startswith(self.prefix)})

    def _list(self, cursor: LogCursor) -> list[str]:
        try:
            self._listed.update(self._streams())
        except Exception as err:
            self._skip("DescribeLogStreams", err)
        return self._known(cursor)

    def _read(self, streams: list[str], cursor: LogCursor, *, drain: bool) -> int:
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
                    # The cursor holds what was emitted; the rest comes at the next look.
                    self._skip("GetLogEvents", err)
                    return copied
                events = page.get("events", [])
                for event in events:
                    self.log.info("[%s] %s", label, event["message"].rstrip("\n"))
                copied += len(events)
                token = page.get("nextForwardToken")
                if not token or token == cursor.get(stream):
                    break  # the same token back: the end of the stream
                cursor[stream] = token
                if not drain and not _full(events):
                    break  # the rest, if any, comes at the next look
        return copied


def _full(events: list[dict[str, Any]]) -> bool:
    """A page as large as GetLogEvents returns: more events are likely waiting right behind it."""
    page = service_behaviour.LOG_EVENTS_PAGE
    size = sum(len(str(e.get("message", ""))) + 26 for e in events)  # 26 bytes of overhead per event
    return len(events) >= page["max_events"] or size >= page["max_bytes"] * 0.9
