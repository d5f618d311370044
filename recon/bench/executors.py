"""Where ``recon bench`` and ``recon batch`` run their tasks: in this process, one after another (``local``, the
default, needs nothing more), or as Ray tasks on a local Ray instance or an existing cluster (``ray``).

Both executors run the same task functions (``fn(spec) -> dict``, top-level functions so Ray ships them by
reference) behind one interface: :meth:`submit`, :meth:`wait` (the handles that finished), :meth:`result` (the
task's return value, or :class:`TaskFailed` with one line). A task declares its resources: one GPU where the cluster
has GPUs (``gpu=True`` tasks), else ``cpus`` CPUs; Ray retries it ``max_retries`` times when its worker process dies
(killed, out of memory, node lost). Exceptions raised by the task are not retried (they are the same every time):
the task functions catch them and return an error line instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recon.errors import ReconError

INSTALL_HINT = "--executor ray needs Ray, an optional extra: pip install 'recon[cluster]' (or pip install 'ray>=2.9')"


class TaskFailed(Exception):
    """A task that did not return: its worker died more often than allowed, or Ray could not run it."""


def import_ray() -> Any:
    """The ``ray`` module, or a one-line ReconError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ReconError(INSTALL_HINT) from None
    return ray


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc``: a ReconError's message as is, else ``Type: first line``."""
    if isinstance(exc, ReconError):
        return str(exc).splitlines()[0] if str(exc) else "error"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def task_log(path: Path, title: str) -> Iterator[None]:
    """Send this process's Python stdout and stderr to ``path`` (appended) for the block, after a header line with
    the time, host and pid of the attempt (a retried task adds a header per attempt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1, encoding="utf-8") as f:
        f.write(f"==== {title}: attempt started {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()} "
                f"pid {os.getpid()}\n")
        with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            yield


def guarded(fn: Callable[[], dict[str, Any]], log: Path, title: str) -> dict[str, Any]:
    """Run ``fn`` with its output in ``log``; return ``{"ok": True, **fn()}`` or ``{"ok": False, "error": line}``
    (the traceback of an unexpected exception goes to the log)."""
    t0 = time.perf_counter()
    try:
        with task_log(log, title):
            try:
                out = fn()
            except ReconError as exc:
                print(f"error: {exc}")
                return {"ok": False, "error": one_line(exc)}
            except Exception as exc:
                traceback.print_exc()
                return {"ok": False, "error": f"{one_line(exc)} (traceback in {log})"}
            print("==== finished")
            return {"ok": True, "seconds": round(time.perf_counter() - t0, 3), **out}
    except OSError as exc:  # the log itself cannot be written (disk full, read-only)
        return {"ok": False, "error": f"{log}: cannot write the task log ({exc.strerror or exc})"}


@dataclass(eq=False)
class Handle:
    """A submitted task: its name, its log file (the driver reads its header to count running tasks) and the
    executor's own reference."""

    name: str
    log: Path | None
    submitted: float
    ref: Any = None
    outcome: tuple[bool, Any] | None = None  # local executor: (returned, value or error line)


@dataclass
class LocalExecutor:
    """Runs each task in this process when the driver waits for it, in submission order."""

    name: str = "local"
    queue: list[tuple[Handle, Callable[..., Any], tuple[Any, ...]]] = field(default_factory=list)

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "", log: Path | None = None,
               gpu: bool = False) -> Handle:
        h = Handle(name, log, time.time())
        self.queue.append((h, fn, args))
        return h

    def wait(self, pending: list[Handle], timeout: float = 1.0) -> list[Handle]:
        for i, (h, fn, args) in enumerate(self.queue):
            if h in pending:
                del self.queue[i]
                try:
                    h.outcome = (True, fn(*args))
                except Exception as exc:  # task functions catch their own errors; this is a bug in one
                    h.outcome = (False, one_line(exc))
                return [h]
        return []

    def result(self, h: Handle) -> Any:
        assert h.outcome is not None
        ok, value = h.outcome
        if not ok:
            raise TaskFailed(value)
        return value

    def running(self, pending: list[Handle]) -> int:
        return min(1, len(pending))  # the next wait() runs one

    def close(self) -> None:
        self.queue.clear()


class RayExecutor:
    """Ray tasks with declared resources and retries on worker death.

    Joins the cluster at ``address`` (Ray's own forms: 'auto', 'HOST:PORT', 'ray://HOST:10001'), or starts a local
    Ray instance with this machine's cores; a Ray already initialised in this process (a test's) is used as is.
    Workers must import the same ``recon`` (install it on every node) and see the same paths (a shared file
    system mounted at the same path everywhere).
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus: int = 1, max_retries: int = 2) -> None:
        if cpus < 1:
            raise ReconError(f"--cpus-per-run: {cpus} is not a CPU count (>= 1)")
        if max_retries < 0:
            raise ReconError(f"--max-retries: {max_retries} is negative")
        ray = import_ray()
        self.ray, self.cpus, self.max_retries = ray, cpus, max_retries
        self._started = False
        if not ray.is_initialized():
            import logging

            if address:
                probe_address(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = address or "a local Ray instance"
                raise ReconError(f"--ray-address: cannot start or join {where} ({one_line(exc)})") from None
            self._started = True
        self.has_gpu = ray.cluster_resources().get("GPU", 0) >= 1
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "", log: Path | None = None,
               gpu: bool = False) -> Handle:
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(fn)
        opts: dict[str, Any] = {"num_cpus": self.cpus, "max_retries": self.max_retries, "retry_exceptions": False}
        if gpu and self.has_gpu:
            opts["num_gpus"] = 1
        if name:
            opts["name"] = name
        ref = self._remote[fn].options(**opts).remote(*args)
        return Handle(name, log, time.time(), ref=ref)

    def wait(self, pending: list[Handle], timeout: float = 1.0) -> list[Handle]:
        by_ref = {h.ref: h for h in pending}
        done, _ = self.ray.wait(list(by_ref), num_returns=len(by_ref), timeout=timeout)
        return [by_ref[r] for r in done]

    def result(self, h: Handle) -> Any:
        from ray import exceptions as rex

        try:
            return self.ray.get(h.ref)
        except rex.WorkerCrashedError:
            raise TaskFailed(f"its worker process died {self.max_retries + 1} times (killed or out of memory); "
                             f"see {h.log}") from None
        except rex.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            raise TaskFailed(one_line(cause) if cause is not None else one_line(exc)) from None
        except rex.RayError as exc:
            raise TaskFailed(one_line(exc)) from None

    def running(self, pending: list[Handle]) -> int:
        """Tasks whose log shows an attempt started since submission (queued ones have not written it yet)."""
        n = 0
        for h in pending:
            with contextlib.suppress(OSError):
                n += h.log is not None and h.log.stat().st_mtime >= h.submitted - 1
        return n

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def probe_address(address: str, timeout: float = 5.0) -> None:
    """Refuse at once a ``HOST:PORT`` (or ``ray://HOST:PORT``) nobody listens on (Ray itself would retry for
    minutes); 'auto' and other forms are left to Ray."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        if address != "auto" and not address.startswith(("ray://", "anyscale://")):
            raise ReconError(f"--ray-address: {address!r} is not 'auto', HOST:PORT or ray://HOST:PORT")
        return
    if not 0 < int(port) < 65536:
        raise ReconError(f"--ray-address: port {port} is out of range (1-65535)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ReconError(f"--ray-address: no Ray cluster answers at {hostport} ({exc.strerror or exc}); start one "
                         "with `ray start --head` or check the address") from None


def make_executor(kind: str, address: str | None = None, cpus: int = 1, max_retries: int = 2
                  ) -> LocalExecutor | RayExecutor:
    """The executor named by ``--executor``; ``--ray-address`` only goes with 'ray'."""
    if kind == "local":
        if address:
            raise ReconError("--ray-address needs --executor ray")
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(address, cpus, max_retries)
    raise ReconError(f"--executor: {kind!r} is not an executor (local or ray)")


class Progress:
    """One bar over a driver's tasks on stderr: finished / total, with done, running and failed counts."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.done = self.failed = self.running = 0
        self.bar = tqdm(total=total, desc=desc, unit="task", disable=not enabled, file=sys.stderr,
                        dynamic_ncols=True)

    def update(self, done: int = 0, failed: int = 0, running: int | None = None) -> None:
        """Add finished tasks and set the running count; the bar is redrawn only when a count changes."""
        if not (done or failed) and (running is None or running == self.running):
            return
        self.done += done
        self.failed += failed
        if running is not None:
            self.running = running
        self.bar.set_postfix(done=self.done, running=self.running, failed=self.failed, refresh=False)
        self.bar.update(done + failed)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
