"""Stopping a child process the same way everywhere kapi starts one (servers, etcd, benchmarks)."""
from __future__ import annotations

import subprocess
from typing import Optional


def stop_process(proc: "Optional[subprocess.Popen[bytes]]", timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds; a no-op once it has exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
