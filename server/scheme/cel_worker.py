"""A child process that evaluates risky CEL rules, killed when one overruns its time budget."""
from __future__ import annotations

import atexit
import select
import subprocess
import sys
import threading
from typing import Any

import orjson


from kapi.scheme.cel_values import (
    _WORKER_MEMORY,
    RULE_TIME_BUDGET,
    SANDBOX_MIN_BYTES,
    _evaluate,
    _kind_of,
    _program,
    _to_cel,
)

Schema = dict[str, Any]

def _job_outcome(job: dict[str, Any]) -> dict[str, Any]:
    schema = job["schema"]
    program = _program(job["rule"], _kind_of(schema))
    old = _to_cel(job["old"], schema, job["root"]) if job["old"] is not None else None
    return _evaluate(program, _to_cel(job["self"], schema, job["root"]), old)


class _Worker:
    """A child Python process for risky rules: one job at a time, killed when it overruns."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._broken = False

    def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The outcome, {"budget": "rule"} if the job overran (or killed the worker), None if no worker."""
        try:
            payload = orjson.dumps(job) + b"\n"
        except TypeError:
            return None
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self.stop()
            proc = self._proc or self._start()
            if proc is None or proc.stdin is None or proc.stdout is None:
                return None
            try:
                proc.stdin.write(payload)
                proc.stdin.flush()
                ready = select.select([proc.stdout], [], [], RULE_TIME_BUDGET)[0]
                line = proc.stdout.readline() if ready else b""
            except (OSError, ValueError):
                line = b""
            if not line:
                self.stop()
                return {"budget": "rule"}
            result: dict[str, Any] = orjson.loads(line)
            return result

    def _start(self) -> subprocess.Popen[bytes] | None:
        if self._broken:
            return None
        code = f"import sys; sys.path[:0] = {sys.path!r}; from kapi.scheme.cel_worker import _serve; _serve()"
        try:
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdout is not None
            if select.select([proc.stdout], [], [], 30)[0] and proc.stdout.readline() == b"ready\n":
                self._proc = proc
                return proc
            proc.kill()
            proc.wait()
        except OSError:
            pass
        self._broken = True  # evaluate in-process from now on (the iteration cap still holds)
        return None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


_worker = _Worker()
atexit.register(_worker.stop)


def _serve() -> None:
    """The worker's loop: one JSON job per line in, one outcome per line out."""
    try:  # a rule that allocates without end dies here instead of starving the machine
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (_WORKER_MEMORY, _WORKER_MEMORY))
    except (ImportError, ValueError, OSError):
        pass
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            result = _job_outcome(orjson.loads(line))
        except Exception as exc:  # a worker never dies on a bad job
            result = {"error": f"internal error: {exc}"}
        out.write(orjson.dumps(result) + b"\n")
        out.flush()


def _small(value: Any, limit: int = SANDBOX_MIN_BYTES) -> bool:
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            total += sum(len(k) + 2 for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            total += len(item) + 2
            stack.extend(item)
        else:
            total += len(item) if isinstance(item, str) else 8
        if total > limit:
            return False
    return True
