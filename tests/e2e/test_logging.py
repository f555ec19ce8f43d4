"""Logging as kube-apiserver's, on real `kapi start` processes: no line per request by default, kube's httplog
line per request at -v=3 and for slow requests at -v=2, JSON lines with --logging-format=json, and a detached
server's log rotating under --log-file-max-size while `kapi logs` (and --follow) reads across the rotations."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CMS = "/api/v1/namespaces/default/configmaps"
# klog's text line with kube's httplog key/values (server.endpoints.httplog)
HTTP_LINE = re.compile(r'^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ httplog\.py:\d+\] "HTTP" verb="(?P<verb>[A-Z]+)" '
                       r'URI="(?P<uri>[^"]*)" latency="(?P<latency>[^"]+)" userAgent="(?P<agent>[^"]*)" '
                       r'audit-ID="[^"]*" srcIP="127\.0\.0\.1:\d+" resp=(?P<resp>\d+)$')


def seconds(go_duration: str) -> float:
    """A Go duration as kube's latency values print it (µs, ms, s, 1m2.5s) in seconds."""
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(ns|µs|ms|s|m|h)", go_duration):
        total += float(number) * {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def new_lines(path: Path, start: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read().decode().splitlines()


def test_default_start_writes_no_line_per_request(kapi_factory: Any) -> None:
    server = kapi_factory()
    before = server.log_path.stat().st_size
    with server.client() as http:
        for i in range(1000):
            path = f"{CMS}?marker={i}" if i % 2 else f"{CMS}/missing-{i}"
            assert http.get(path).status_code in (200, 404)
    time.sleep(0.5)
    lines = new_lines(server.log_path, before)
    assert not [line for line in lines if "marker=" in line or "missing-" in line or "HTTP" in line], lines
    assert len(lines) < 5, lines  # nothing per request (at most an unrelated line)


def test_v3_writes_one_httplog_line_per_request(kapi_factory: Any) -> None:
    server = kapi_factory("-v=3")
    before = server.log_path.stat().st_size
    with server.client() as http:
        http.headers["User-Agent"] = "e2e-logging/1.0"
        assert http.post(CMS, json={"metadata": {"name": "one"}}).status_code == 201
        for i in range(200):
            assert http.get(CMS, params={"marker": str(i)}).status_code == 200
        assert http.get(CMS + "/missing").status_code == 404
        assert http.delete(CMS + "/one").status_code == 200
    time.sleep(0.5)
    matches = [m for m in map(HTTP_LINE.match, new_lines(server.log_path, before)) if m]
    mine = [m for m in matches if m["agent"] == "e2e-logging/1.0"]
    assert [(m["verb"], m["uri"], m["resp"]) for m in mine] == [
        ("POST", CMS, "201"), *[("LIST", f"{CMS}?marker={i}", "200") for i in range(200)],
        ("GET", CMS + "/missing", "404"), ("DELETE", CMS + "/one", "200")]
    assert all(seconds(m["latency"]) > 0 for m in mine)


def test_json_format_lines_all_parse(kapi_factory: Any) -> None:
    server = kapi_factory("--logging-format=json", "-v=3")
    with server.client() as http:
        for i in range(20):
            assert http.get(CMS, params={"marker": str(i)}).status_code == 200
        assert http.get(CMS + "/missing").status_code == 404
    server.stop()  # the shutdown lines too
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]  # every line is JSON
    assert all(isinstance(line["ts"], float) and line["ts"] > 1.6e12 and line["msg"] and line["caller"]
               for line in lines)
    messages = [line["msg"] for line in lines]
    assert "Serving" in messages and "Application startup complete." in messages
    serving = lines[messages.index("Serving")]
    assert serving["urls"] == [server.url] and serving["requestTimeout"] == "60s"
    http_lines = [line for line in lines if line["msg"] == "HTTP" and "marker=" in line["URI"]]
    assert [line["URI"] for line in http_lines] == [f"{CMS}?marker={i}" for i in range(20)]
    assert all((line["v"], line["verb"], line["resp"]) == (3, "LIST", 200) for line in http_lines)
    missing = [line for line in lines if line["msg"] == "HTTP" and line["URI"].endswith("/missing")]
    assert [(line["verb"], line["resp"]) for line in missing] == [("GET", 404)]


def test_v2_logs_start_up_and_slow_requests_only(kapi_factory: Any) -> None:
    server = kapi_factory("-v=2")
    before = server.log_path.stat().st_size
    with server.client() as http:
        fault = {"type": "Delay", "delaySeconds": 1.2, "resource": "configmaps", "count": 1}
        assert http.post("/kapi/faults", json=fault).status_code == 201
        assert http.get(CMS, params={"slow": "1"}).status_code == 200
        fast = [http.get(CMS, params={"fast": str(i)}) for i in range(50)]
    assert all(r.status_code == 200 for r in fast)
    deadline = time.monotonic() + 10  # the server writes its log on its own time: wait for the slow line
    while True:
        matches = [m for m in map(HTTP_LINE.match, new_lines(server.log_path, before)) if m]
        slow = [(m["verb"], m["resp"]) for m in matches if m["uri"] == f"{CMS}?slow=1"]
        if slow or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert slow == [("LIST", "200")]
    assert seconds(next(m["latency"] for m in matches if m["uri"] == f"{CMS}?slow=1")) >= 1.19  # asyncio timers may fire a hair early
    # what the client got in under a second took the server under a second: not logged at -v=2
    quick = {r.request.url.raw_path.decode() for r in fast if r.elapsed.total_seconds() < 0.9}
    assert quick and not quick & {m["uri"] for m in matches}
    startup = [line for line in server.log_path.read_text().splitlines() if '"Starting kapi"' in line]
    assert len(startup) == 1 and "verbosity=2" in startup[0] and f"insecurePort={server.port}" in startup[0]


# -- a detached server's log rotates; `kapi logs` reads across the rotations --------------------------------
class Kapi:
    """The `kapi` CLI with a private KAPI_HOME; kills what it started if a test fails midway."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.home = tmp, tmp / "kapi-home"
        self.env = {**os.environ, "KAPI_HOME": str(self.home)}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "kapi_cli.main", *args], capture_output=True, text=True,
                                env=self.env, cwd=REPO, timeout=60)
        assert result.returncode == 0, f"kapi {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result

    def pid(self, name: str) -> int | None:
        path = self.home / "instances" / f"{name}.json"
        return int(json.loads(path.read_text())["pid"]) if path.exists() else None


@pytest.fixture
def kapi(tmp_path: Path) -> Iterator[Kapi]:
    runner = Kapi(tmp_path)
    yield runner
    pid = runner.pid("rot")
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r'URI="/api/v1/namespaces/default/configmaps\?marker=(\d+)"', text)]


def get_markers(port: int, numbers: range) -> None:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for i in numbers:
            assert http.get(CMS, params={"marker": str(i)}).status_code == 200


def test_detached_log_rotates_and_kapi_logs_reads_across(kapi: Kapi) -> None:
    port = free_port()
    kapi("start", "--detach", "--name", "rot", "--backend", "memory", "--secure-port", "0", "--insecure-port",
         str(port), "--authn-allow-localhost=true", "--file-rootpath", str(kapi.tmp / "root"), "-v=3",
         "--log-file-max-size", "0.01", "--log-file-max-backups", "50")
    log = kapi.home / "logs" / "rot.log"
    get_markers(port, range(200))  # ~45 KB of lines: several 10 KB files
    assert (kapi.home / "logs" / "rot.log.3").exists()
    assert all(p.stat().st_size < 11 * 1024 for p in log.parent.glob("rot.log.*"))
    logs = kapi("logs", "rot").stdout
    assert "kapi start: rot" in logs and "Application startup complete" in logs  # from the oldest file
    assert markers(logs) == list(range(200))  # every request once, in order, across the files
    assert markers(kapi("logs", "rot", "--tail", "3").stdout) == [197, 198, 199]

    lines: list[str] = []
    follower = subprocess.Popen([sys.executable, "-m", "kapi_cli.main", "logs", "rot", "--follow"], cwd=REPO,
                                env=kapi.env, stdout=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while 199 not in markers("".join(lines)) and time.monotonic() < deadline:
            time.sleep(0.05)
        rotated_before = len(list(log.parent.glob("rot.log.*")))
        get_markers(port, range(200, 400))  # rotates several times while followed
        assert len(list(log.parent.glob("rot.log.*"))) >= rotated_before + 3
        kapi("stop", "rot")
        follower.wait(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
    reader.join(timeout=5)
    followed = "".join(lines)
    assert follower.returncode == 0
    assert markers(followed) == list(range(400))  # the history, then each new line once across rotations
    assert "Finished server process" in followed
