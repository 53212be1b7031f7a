"""Warm pools on this machine: a finished training job's hosts, torch already imported, take the next job.

SageMaker keeps a job's instances ``KeepAlivePeriodInSeconds`` after it ends when the request asks
for it, and hands them to the next job whose matching values are identical
(:func:`~airflow_dl_provider.service_behaviour.warm_pool_match`); that job's ``WarmPoolStatus`` is
``InUse`` and the first one's ``Reused`` (``ReusedByJob``). Here the "instances" are one detached
*pool process* per pool (``python -m airflow_dl_provider.backends.local.warm_pool DIR FD``) that
imports torch once and then forks one host per request. The pool process itself never runs a
job's code: each host is a fresh fork of it, given that job's environment, working directory and
argv, so a reused host starts as a new ``python train.py`` would, less the import time, and
carries nothing of the jobs before it (as each job on a SageMaker warm pool gets a new container).

Lifetime, as for the runner and the S3 server (:mod:`.processes`): the pool process holds
``pool.lock`` for life. It exits, killing its hosts, when its keep-alive expires while
``Available``, when the S3 server it was started against stops (``airflow-dl local down``), when
its home is deleted, when it is terminated (:func:`terminate`), or when the job using it lost its
runner. A host dies with the pool process (``PR_SET_PDEATHSIG``) and is killed when the runner that
asked for it closes its connection, however the runner died. Linux only: elsewhere jobs run cold.

Simulated, and said so in the job's log: the pool is one process on this machine, not instances;
pools are matched on the documented values plus this machine's Python.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.backends.local import server
from airflow_dl_provider.backends.local.processes import (
    die_with_this_thread,
    hold_lock,
    holds_lock,
    lock_held,
)
from airflow_dl_provider.backends.local.state import JobStore, LocalJob, write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator

POOLS = "warm-pools"
POOL_LOCK = "pool.lock"
# The tag with which the local tuning worker keeps a tuning job's trial pools to that tuning job:
# SageMaker reuses clusters between one tuning job's trials, never with other jobs.
OWNER_TAG = "airflow-dl:warm-pool-owner"
READY_TIMEOUT_SECONDS = 120.0
_CHECK_SECONDS = 0.25
_KILL_GRACE_SECONDS = 10.0


def supported() -> bool:
    """Warm pools need Linux: abstract sockets, and hosts that die with their pool process."""
    return sys.platform.startswith("linux")


def owner_of(request: dict[str, Any]) -> str:
    return next((t["Value"] for t in request.get("Tags") or [] if t.get("Key") == OWNER_TAG), "")


def _match(request: dict[str, Any]) -> str:
    """What a job must share with a pool to take it: the service's values, the owner, this Python."""
    values = {
        **service_behaviour.warm_pool_match(request),
        "owner": owner_of(request),
        "python": sys.executable,
    }
    return json.dumps(values, sort_keys=True, default=str)


class WarmPool:
    """One pool's directory: ``pool.json`` (its record), ``pool.lock`` (held by its process for life)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def record_path(self) -> Path:
        return self.dir / "pool.json"

    def record(self) -> dict[str, Any]:
        return dict(json.loads(self.record_path.read_text()))

    def alive(self) -> bool:
        return lock_held(self.dir / POOL_LOCK)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The record, read and written back under ``claim.lock``: each change is a check-and-set."""
        with open(self.dir / "claim.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                record = self.record()
                yield record
                write_json_atomic(self.record_path, record)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _claim(self, match: str, job: LocalJob, keep_alive: int) -> str | None:
        """Take the pool for ``job`` if it is Available, matches and lives; return the job it leaves."""
        with contextlib.suppress(OSError, ValueError), self._locked() as record:
            if (
                record["match"] != match
                or record["status"] != "Available"
                or time.time() > record["expires"]
                or time.time() - record["created"] > service_behaviour.WARM_POOL_MAX_LIFETIME_SECONDS
                or not self.alive()
            ):
                return None
            previous = str(record["job"])
            retained = round(time.time() - record["available_since"])
            record.update(status="InUse", job=job.name, job_dir=str(job.dir), keep_alive=keep_alive)
            record["jobs"].append(job.name)
            _publish(job.dir.parent / previous, "Reused", ReusedByJob=job.name, retained=retained)
            return previous
        return None

    def release(self, job: LocalJob) -> None:
        """The job is done with the hosts: Available for its keep-alive, for the next matching job."""
        with contextlib.suppress(OSError, ValueError), self._locked() as record:
            if record["status"] == "InUse" and record["job"] == job.name:
                now = time.time()
                record.update(status="Available", available_since=now, expires=now + record["keep_alive"])
                _publish(job.dir, "Available")

    def terminate(self) -> None:
        """Ask the pool process to exit; it kills its hosts, records Terminated and drops its lock."""
        with contextlib.suppress(OSError, ValueError), self._locked() as record:
            record["status"] = "Terminated"

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path) -> PooledHost:
        """Fork one host off the pool process, running ``argv`` as ``python argv...`` would in ``cwd``."""
        read, write = os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.record()["address"])
            payload = json.dumps({"argv": argv, "env": env, "cwd": str(cwd)}).encode()
            socket.send_fds(conn, [len(payload).to_bytes(8, "big") + payload], [write])
        except BaseException:
            conn.close()
            os.close(read)
            raise
        finally:
            os.close(write)
        host = PooledHost(conn, argv, os.fdopen(read, "rb"))  # the host's stdout and stderr
        host.pid = int(host.message(timeout=30.0).get("pid", 0))
        if not host.pid:
            host.kill()
            raise OSError(f"the warm pool in {self.dir} did not start a host")
        return host


class PooledHost:
    """A host forked by a pool process, driven as the ``subprocess.Popen`` of a fresh host is.

    The connection to the pool process stands for the parent-child tie: the pool reports the host's
    exit status on it, takes signals for it, and kills the host if it closes (the runner died).
    """

    def __init__(self, conn: socket.socket, argv: list[str], stdout: IO[bytes]) -> None:
        self.conn, self.args, self.stdout = conn, argv, stdout
        self.pid = 0
        self.returncode: int | None = None
        self._buffer = b""

    def message(self, timeout: float) -> dict[str, Any]:
        """The pool's next message (``{"pid"}``, ``{"exit"}``), or ``{}`` if none came in ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if not select.select([self.conn], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return {}
            data = self.conn.recv(4096)
            if not data:  # the pool process is gone, and its hosts with it (PR_SET_PDEATHSIG)
                self.returncode = -signal.SIGKILL if self.returncode is None else self.returncode
                return {"exit": self.returncode}
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = dict(json.loads(line))
        if "exit" in message:
            self.returncode = int(message["exit"])
            self.conn.close()
        return message

    def poll(self) -> int | None:
        if self.returncode is None:
            self.message(timeout=0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.message(timeout=min(left, 1.0))
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self.conn.sendall(json.dumps({"signal": int(signum)}).encode() + b"\n")

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _publish(job_dir: Path, status: str, *, retained: int | None = None, **extra: Any) -> None:
    """Write the job's ``WarmPoolStatus`` as DescribeTrainingJob returns it."""
    if not (job_dir / "state.json").exists():
        return
    job = LocalJob(job_dir)
    current = dict(job.state().get("WarmPoolStatus") or {})
    current.update(Status=status, **extra)
    if retained is not None:
        current["ResourceRetainedBillableTimeInSeconds"] = max(0, retained)
    job.update(WarmPoolStatus=current)


def pools(home: Path) -> list[WarmPool]:
    root = home / POOLS
    return (
        [WarmPool(d) for d in sorted(root.iterdir()) if (d / "pool.json").exists()] if root.is_dir() else []
    )


def acquire(home: Path, job: LocalJob, request: dict[str, Any]) -> tuple[WarmPool, str | None] | None:
    """A pool for the job's hosts: an Available matching one (and the job it leaves), or a new one.

    None when the request keeps no warm pool (no ``KeepAlivePeriodInSeconds``, spot, heterogeneous
    cluster) or this machine cannot run one: the job's hosts start cold, as without a pool.
    """
    keep_alive = service_behaviour.warm_pool_keep_alive(request)
    if keep_alive <= 0 or not supported():
        return None
    keep_alive = min(keep_alive, service_behaviour.WARM_POOL_MAX_KEEP_ALIVE_SECONDS)
    match = _match(request)
    for pool in pools(home):
        previous = pool._claim(match, job, keep_alive)
        if previous is not None:
            _publish(job.dir, "InUse")
            return pool, previous
    return _start(home, job, match, keep_alive), None


def _start(home: Path, job: LocalJob, match: str, keep_alive: int) -> WarmPool:
    pool = WarmPool(home / POOLS / f"{job.name}-{uuid.uuid4().hex[:8]}")
    pool.dir.mkdir(parents=True)
    now = time.time()
    write_json_atomic(
        pool.record_path,
        {
            "match": match,
            "status": "InUse",
            "job": job.name,
            "job_dir": str(job.dir),
            "jobs": [job.name],
            "keep_alive": keep_alive,
            "created": now,
            "available_since": now,
            "expires": now + keep_alive,
            "home": str(home),
            "generation": server.generation(home),
            "address": f"\0airflow-dl-warm-pool-{uuid.uuid4().hex}",
            # A tuning job's trial pools end with it, whether or not it got to terminate them.
            "owner_dir": str(JobStore(home).path("tuning", owner))
            if (owner := json.loads(match)["owner"])
            else None,
            "ready": False,
        },
    )
    lock = hold_lock(pool.dir / POOL_LOCK)
    try:
        with open(pool.dir / "pool.log", "ab") as log:
            subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    "-m",
                    "airflow_dl_provider.backends.local.warm_pool",
                    str(pool.dir),
                    str(lock),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(lock,),
                start_new_session=True,  # it outlives the runner that started it, as instances outlive a job
            )
    finally:
        os.close(lock)
    _publish(job.dir, "InUse")
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not pool.record().get("ready"):
        if time.monotonic() > deadline or not pool.alive():
            pool.terminate()
            raise OSError(f"the warm pool process in {pool.dir} did not start; see its pool.log")
        time.sleep(0.05)
    return pool


def terminate_all(home: Path, *, owner: str | None = None) -> int:
    """Terminate the pools of ``home`` (those of one owner, if given) and wait until their processes exit."""
    chosen = []
    for pool in pools(home):
        with contextlib.suppress(OSError, ValueError):
            if owner is None or json.loads(pool.record()["match"])["owner"] == owner:
                pool.terminate()
                chosen.append(pool)
    deadline = time.monotonic() + _KILL_GRACE_SECONDS + 5
    while any(p.alive() for p in chosen) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(chosen)


def settle(state: dict[str, Any]) -> dict[str, Any]:
    """Describe's view of a job's ``WarmPoolStatus``: a pool whose process is gone is Terminated."""
    status = state.get("WarmPoolStatus") or {}
    if status.get("Status") not in ("Available", "InUse") or not state.get("_warm_pool"):
        return state
    pool = WarmPool(Path(state["_warm_pool"]))
    if pool.alive():
        return state
    return {**state, "WarmPoolStatus": {**status, "Status": "Terminated"}}


# -- the pool process ----------------------------------------------------------------------------------------


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _become_host(spec: dict[str, Any], out: int, process: _PoolProcess, conn: socket.socket) -> None:
    """In the forked child: become ``python argv...`` with the job's environment and directory; never returns."""
    code = 1
    try:
        process.selector.close()
        for sock in [process.listener, conn, *process.hosts.values()]:
            sock.close()
        os.close(process.lock)  # the pool's liveness is its own: a host must not keep it "alive"
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        if process.tie is not None:
            process.tie()  # the host dies with the pool process, which forked it from its only thread
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.environ.clear()
        os.environ.update(spec["env"])
        os.chdir(spec["cwd"])
        argv = [str(a) for a in spec["argv"]]
        sys.argv = argv
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))  # as `python script.py` sets it
        import runpy

        try:
            runpy.run_path(argv[0], run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        import atexit

        atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class _PoolProcess:
    def __init__(self, pool: WarmPool, lock: int) -> None:
        self.pool, self.lock = pool, lock
        self.tie = die_with_this_thread()
        self.stopping = False
        self.record = pool.record()
        self.home = Path(self.record["home"])
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.record["address"])
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.hosts: dict[int, socket.socket] = {}

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(30.0)
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 1)
        if len(data) < 8 or not fds:
            conn.close()
            return
        size = int.from_bytes(data[:8], "big")
        payload = data[8:]
        while len(payload) < size:
            chunk = conn.recv(size - len(payload))
            if not chunk:
                break
            payload += chunk
        spec = json.loads(payload)
        pid = os.fork()
        if pid == 0:
            _become_host(spec, fds[0], self, conn)
        os.close(fds[0])
        self.hosts[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    def _signal(self, conn: socket.socket, pid: int) -> None:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the runner is gone: so is the host it asked for
            self.selector.unregister(conn)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        for line in data.splitlines():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(pid, int(json.loads(line)["signal"]))

    def _reap(self) -> None:
        while self.hosts:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.hosts.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(conn)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                conn.close()

    def _why_end(self) -> str | None:
        if self.stopping:
            return "SIGTERM"
        if not self.pool.dir.is_dir():
            return "its home is gone"
        try:
            record = self.pool.record()
        except (OSError, ValueError):
            return None
        if record["status"] == "Terminated":
            return "terminated"
        if record["status"] == "Available" and time.time() > record["expires"]:
            return f"KeepAlivePeriodInSeconds ({record['keep_alive']} s) expired"
        if (
            record["status"] == "InUse"
            and not self.hosts
            and not lock_held(Path(record["job_dir"]) / "runner.lock")
        ):
            return f"the runner of job {record['job']} is gone"
        owner = record.get("owner_dir")
        if owner and not lock_held(Path(owner) / "runner.lock"):
            return "the tuning job that owns it ended"
        if server.generation(self.home) != self.record["generation"]:
            return "the local S3 server it was started against stopped"
        return None

    def serve(self) -> str:
        with contextlib.suppress(OSError, ValueError), self.pool._locked() as record:
            record.update(ready=True, pid=os.getpid())
        last_check = 0.0
        while True:
            for key, _events in self.selector.select(timeout=_CHECK_SECONDS):
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._signal(key.fileobj, key.data)  # type: ignore[arg-type]
            self._reap()
            if time.monotonic() - last_check >= _CHECK_SECONDS:
                last_check = time.monotonic()
                why = self._why_end()
                if why:
                    return why

    def shut_down(self, why: str) -> None:
        for pid in list(self.hosts):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_GRACE_SECONDS
        while self.hosts and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        with contextlib.suppress(OSError, ValueError), self.pool._locked() as record:
            record.update(status="Terminated", why=why)
            _publish(Path(record["job_dir"]), "Terminated")
        print(f"warm pool {self.pool.dir.name} terminated: {why}", flush=True)


def main(argv: list[str]) -> int:
    pool = WarmPool(Path(argv[1]))
    lock = int(argv[2])
    if not holds_lock(lock, pool.dir / POOL_LOCK):
        return 1
    with contextlib.suppress(ImportError):
        import torch  # noqa: F401  (what the pool is for: hosts forked from here start with it imported)
    process = _PoolProcess(pool, lock)

    def stop(*_: Any) -> None:
        process.stopping = True

    signal.signal(signal.SIGTERM, stop)
    why = "?"
    try:
        why = process.serve()
    finally:
        process.shut_down(why)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
