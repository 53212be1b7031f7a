"""The local backend's processes: how it knows one is alive, ties a host to its runner, picks a port.

A job's runner and the embedded S3 server prove they are alive by holding an exclusive ``flock`` on a
file for their whole life. The kernel drops the lock when the holder dies, however it dies (SIGKILL,
out of memory, a reboot), and no stranger can inherit it the way a recycled pid is inherited; so a
probe that can take the lock knows the holder is gone for good. The lock is taken by the process
that starts the holder, before anyone can see what it guards, and handed over as an inherited file
descriptor: from the first moment to the last there is no instant in which a live job looks dead.

:func:`process_alive` remains for the processes tracked by pid (endpoint servers) and for tests.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def hold_lock(path: Path) -> int:
    """Create ``path`` if needed and take its exclusive lock; return the descriptor that holds it.

    The caller hands the descriptor to the process that keeps it for life (``pass_fds``) and then
    closes its own copy; the lock lasts while any process holds the descriptor.

    :raises BlockingIOError: a live process holds the lock already.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def lock_held(path: Path) -> bool:
    """Does a live process hold ``path``'s lock? Never waits and never signals anyone.

    The probe takes the lock for an instant when it is free (a holder that is gone never comes back,
    so nothing is lost); a missing file means no process ever held it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # drops the lock if the probe took it
    return False


def holds_lock(fd: int, path: Path) -> bool:
    """Is ``fd`` (inherited from the starter) the descriptor that holds ``path``'s lock?"""
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path))
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a no-op for the holder; fails for anyone else
    except OSError:
        return False
    return same


def process_alive(pid: int | None) -> bool:
    """Is ``pid`` a live process (not a zombie)? For pid-tracked processes only: a pid can be reused.

    A killed multi-threaded process shows its leader as a zombie while its other threads are still
    exiting, and those threads hold its descriptors (and so its locks) until the last one is gone: the
    process counts as alive until no thread of it is left running.
    """
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        if _thread_state(Path(f"/proc/{pid}/stat")) not in _ENDED:
            return True
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal probe is all there is
    for task in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            if _thread_state(task) not in _ENDED:
                return True
        except (OSError, IndexError):
            continue  # that thread has just gone
    return False


_ENDED = ("Z", "X", "x")  # zombie, dead


def _thread_state(stat: Path) -> str:
    """The state letter of a ``/proc/.../stat`` line (after the command name, which may hold spaces)."""
    return stat.read_text().rsplit(")", 1)[-1].split()[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_this_thread() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when the calling thread ends.

    Used for a job's hosts: a runner killed with SIGKILL cannot clean up, and nobody else may signal
    its processes (a pid read from a file may belong to a stranger by then). Linux's
    ``PR_SET_PDEATHSIG`` fires on the death of the *thread* that started the child, so call this on
    the thread that lives as long as the hosts (the runner's main thread). None where the kernel has
    no such call (macOS): there a killed runner's hosts run to their end.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the runner died before the tie was made
            os._exit(1)

    return preexec


# What a job's processes never get from the process that created the job: its connections and
# variables (AIRFLOW_CONN_*, AIRFLOW_VAR_*: whole credentials) and its AWS keys. SageMaker gives a job
# its execution role's credentials, never the caller's; the embedded S3 server takes placeholders.
_CALLER_SECRET_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_")
_CALLER_SECRET_NAMES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"}
)


def job_environment(environ: Mapping[str, str], credentials: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the caller's secrets, with ``credentials`` (the placeholder key pair) instead.

    :param credentials: ``{"login": key id, "password": secret key}``.
    """
    env = {
        k: v
        for k, v in environ.items()
        if k not in _CALLER_SECRET_NAMES and not k.startswith(_CALLER_SECRET_PREFIXES)
    }
    env.update(AWS_ACCESS_KEY_ID=credentials["login"], AWS_SECRET_ACCESS_KEY=credentials["password"])
    return env


def spawn_holding_lock(
    command: list[str], lock: Path, log: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` detached (its own session, output appended to ``log``), holding ``lock`` for life.

    The lock is taken here, before the process exists, and inherited by it (:func:`hold_lock`);
    ``{lock_fd}`` in an argument becomes the inherited descriptor's number, for a process that
    checks it holds the lock (:func:`holds_lock`).

    :raises BlockingIOError: a live process holds the lock already.
    """
    fd = hold_lock(lock)
    try:
        with open(log, "ab") as out:
            return subprocess.Popen(
                [arg.replace("{lock_fd}", str(fd)) for arg in command],
                env=None if env is None else dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # it outlives whoever started it
                pass_fds=(fd,),  # the process holds the lock for its life
            )
    finally:
        os.close(fd)


def answers(
    url: str, timeout: float, *, proc: subprocess.Popen[bytes] | None = None, every: float = 0.2
) -> bool:
    """Does ``url`` answer an HTTP GET within ``timeout`` seconds? False at once if ``proc`` exits first.

    For the servers the local backend starts (the S3 server, Label Studio): each is ready once it answers.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=max(every, 1.0)):
                return True
        except OSError:
            time.sleep(every)
    return False
