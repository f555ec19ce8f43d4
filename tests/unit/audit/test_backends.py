"""The audit backends: the log's lumberjack rotation and buffering, and the webhook's batches over real HTTP."""
from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from kapi.audit.auditor import AuditConfigError, build_auditor
from kapi.audit.backends import (
    FLUSH_BYTES,
    MEGABYTE,
    WRITE_DELAY,
    LogBackend,
    RotatingFile,
    WebhookBackend,
    backup_name,
    backup_time,
)
from kapi.auth.main_server import Connection


class Clock:
    """A settable UTC clock for backup names and ages."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def line(size: int, mark: str = "x") -> bytes:
    return (mark * (size - 1)).encode() + b"\n"


def test_backup_names_as_lumberjack(tmp_path: Path) -> None:
    now = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    assert backup_name(tmp_path / "audit.log", now).name == "audit-2024-05-06T07-08-09.123.log"
    assert backup_name(tmp_path / "audit", now).name == "audit-2024-05-06T07-08-09.123"
    assert backup_time(tmp_path / "audit.log", "audit-2024-05-06T07-08-09.123.log") == now.replace(microsecond=123000)
    assert backup_time(tmp_path / "audit.log", "audit.log") is None
    assert backup_time(tmp_path / "audit.log", "audit-notatime.log") is None
    assert backup_time(tmp_path / "audit.log", "other-2024-05-06T07-08-09.123.log") is None


def test_rotates_past_max_size_into_timestamped_backups(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "logs" / "audit.log"
    log = RotatingFile(path, max_size_mb=1, clock=clock)
    log.ensure()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    chunk = line(100 * 1024)
    for _ in range(10):  # exactly 1000 KiB: fits
        log.write(chunk)
    log.flush()
    assert path.stat().st_size == 10 * len(chunk) and not log.backups()
    log.write(line(100 * 1024, "y"))  # 1100 KiB > 1 MiB: the old file is moved aside first
    log.close()
    backup = path.with_name("audit-2024-05-06T07-08-09.123.log")
    assert [p for _, p in log.backups()] == [backup]
    assert backup.read_bytes() == chunk * 10
    assert path.read_bytes() == line(100 * 1024, "y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_max_backups_and_max_age(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "audit.log"
    log = RotatingFile(path, max_size_mb=1, max_backups=2, clock=clock)
    big = line(700 * 1024)
    for _ in range(5):  # 07:09 .. 07:13; each write after the first rotates, naming the backup by that time
        clock.now += timedelta(minutes=1)
        log.write(big)
    log.close()
    kept = [p.name for _, p in log.backups()]
    assert kept == ["audit-2024-05-06T07-13-09.123.log", "audit-2024-05-06T07-12-09.123.log"]  # the newest two

    aged = RotatingFile(path, max_size_mb=1, max_age_days=3, clock=clock)
    old = path.with_name("audit-2024-04-01T00-00-00.000.log")
    old.write_bytes(b"old\n")
    clock.now += timedelta(days=2)
    aged.write(big)  # opening the existing file (full enough) rotates, then old backups go
    aged.close()
    names = {p.name for _, p in aged.backups()}
    assert old.name not in names and "audit-2024-05-06T07-12-09.123.log" in names


def test_an_existing_file_is_appended_to_until_full(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"earlier\n")
    log = RotatingFile(path, max_size_mb=1)
    log.write(b"later\n")
    log.close()
    assert path.read_bytes() == b"earlier\nlater\n"
    with pytest.raises(ValueError, match="exceeds maximum file size"):
        RotatingFile(path, max_size_mb=1).write(b"z" * (MEGABYTE + 1))


def test_default_max_size_is_lumberjacks_100_mb(tmp_path: Path) -> None:
    assert RotatingFile(tmp_path / "a.log").max_bytes == 100 * MEGABYTE


def test_log_backend_writes_each_batch_out(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    backend = LogBackend(str(path))
    assert path.exists()  # created at start-up, as kube's ensureLogFile
    backend.write([orjson.dumps({"auditID": str(i)}) + b"\n" for i in range(3)])
    assert [orjson.loads(raw)["auditID"] for raw in path.read_bytes().splitlines()] == ["0", "1", "2"]
    backend.write([b'{"auditID":"3"}\n'])
    assert path.read_bytes().splitlines()[-1] == b'{"auditID":"3"}'


async def test_log_backend_writes_once_enough_waits_or_soon_after(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    backend = LogBackend(str(path))
    backend.write([b'{"auditID":"a"}\n'])
    assert path.read_bytes() == b""  # waits for more, a short while
    await asyncio.sleep(WRITE_DELAY * 2)
    assert path.read_bytes() == b'{"auditID":"a"}\n'
    big = [b"x" * 1023 + b"\n"] * (FLUSH_BYTES // 1024)
    backend.write(big)  # a full buffer goes at once
    assert path.stat().st_size == 16 + FLUSH_BYTES
    backend.write([b'{"auditID":"z"}\n'])
    await backend.close()  # and what is left at close
    assert path.read_bytes().endswith(b'{"auditID":"z"}\n')


def test_log_backend_to_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    backend = LogBackend("-")
    backend.write([b'{"kind":"Event","auditID":"a"}\n', b'{"kind":"Event","auditID":"b"}\n'])
    assert capfd.readouterr().out == '{"kind":"Event","auditID":"a"}\n{"kind":"Event","auditID":"b"}\n'


def test_a_line_too_big_for_the_file_is_dropped_with_an_error(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.log"
    backend = LogBackend(str(path), max_size_mb=1)
    backend.write([b"a\n", b"x" * (MEGABYTE + 1), b"b\n"])
    assert path.read_bytes() == b"a\nb\n"
    assert "Error in audit plugin 'log' affecting 1 audit events: write length" in caplog.text


class Receiver:
    """A real HTTP server recording the EventLists POSTed to it; answers with `codes` in turn, then 200."""

    def __init__(self, codes: tuple[int, ...] = ()) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.codes = list(codes)
        received, codes_left = self.bodies, self.codes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = codes_left.pop(0) if codes_left else 200
                if code == 200:
                    received.append({"path": self.path, "type": self.headers["Content-Type"],
                                     "auth": self.headers.get("Authorization"), **orjson.loads(body)})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/audit"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def item(i: int) -> bytes:
    """An event as the log line the backends are given."""
    return b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",' + orjson.dumps(
        {"auditID": f"id-{i}", "stage": "ResponseComplete"})[1:] + b"\n"


async def wait_for(check: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_webhook_sends_full_batches_at_once(receiver: Receiver) -> None:
    backend = WebhookBackend(Connection(receiver.url, token="t0k"), batch_max_size=3, batch_max_wait=60)
    await backend.start()
    backend.write([item(i) for i in range(7)])
    await wait_for(lambda: len(receiver.bodies) == 2)  # two full batches; the seventh waits (60 s)
    # batches go out concurrently (as kube's goroutines): each in order, the two in either order
    assert sorted([e["auditID"] for e in b["items"]] for b in receiver.bodies) == [
        ["id-0", "id-1", "id-2"], ["id-3", "id-4", "id-5"]]
    first = min(receiver.bodies, key=lambda b: b["items"][0]["auditID"])
    assert (first["kind"], first["apiVersion"], first["path"]) == ("EventList", "audit.k8s.io/v1", "/audit")
    assert first["type"] == "application/json" and first["auth"] == "Bearer t0k"
    assert list(first["items"][0]) == ["auditID", "stage"]  # EventList items carry no kind
    await backend.close()  # what is left is sent at shutdown
    assert [e["auditID"] for e in receiver.bodies[2]["items"]] == ["id-6"]


async def test_webhook_sends_a_partial_batch_after_max_wait(receiver: Receiver) -> None:
    backend = WebhookBackend(Connection(receiver.url), batch_max_size=100, batch_max_wait=0.2)
    await backend.start()
    backend.write([item(1), item(2)])
    await wait_for(lambda: len(receiver.bodies) == 1)
    assert [e["auditID"] for e in receiver.bodies[0]["items"]] == ["id-1", "id-2"]
    await backend.close()
    assert len(receiver.bodies) == 1


async def test_webhook_retries_server_errors() -> None:
    receiver = Receiver(codes=(503, 500))
    try:
        backend = WebhookBackend(Connection(receiver.url), batch_max_size=1, batch_max_wait=60, initial_backoff=0.01)
        await backend.start()
        backend.write([item(1)])
        await wait_for(lambda: len(receiver.bodies) == 1)
        await backend.close()
    finally:
        receiver.close()


async def test_webhook_drops_events_beyond_its_buffer(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    backend = WebhookBackend(Connection(receiver.url), batch_max_size=10, batch_max_wait=60, buffer_size=2)
    backend.write([item(i) for i in range(3)])  # not started: nothing is taken out of the buffer
    assert backend.dropped == 1 and "audit buffer queue blocked" in caplog.text
    await backend.start()
    await backend.close()
    assert [e["auditID"] for e in receiver.bodies[0]["items"]] == ["id-0", "id-1"]


class Settings:
    def __init__(self, **kw: Any) -> None:
        self.audit_policy_file: Path | None = None
        self.audit_log_path = ""
        self.audit_log_maxage = self.audit_log_maxbackup = self.audit_log_maxsize = 0
        self.audit_webhook_config_file: Path | None = None
        self.audit_webhook_batch_max_size, self.audit_webhook_batch_max_wait = 400, 30.0
        self.__dict__.update(kw)


POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def test_build_auditor_needs_a_policy_and_a_backend(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert build_auditor(Settings(audit_log_path=str(tmp_path / "a.log"))) is None  # no policy
    assert build_auditor(Settings(audit_policy_file=policy)) is None  # no backend
    assert not (tmp_path / "a.log").exists()
    auditor = build_auditor(Settings(audit_policy_file=policy, audit_log_path=str(tmp_path / "a.log")))
    assert auditor is not None and [b.name for b in auditor.backends] == ["log"]
    kubeconfig = tmp_path / "webhook.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sink\n  cluster:\n    server: http://127.0.0.1:9/x\n"
        "contexts:\n- name: c\n  context:\n    cluster: sink\ncurrent-context: c\n")
    both = build_auditor(Settings(audit_policy_file=policy, audit_log_path=str(tmp_path / "a.log"),
                                  audit_webhook_config_file=kubeconfig))
    assert both is not None and [b.name for b in both.backends] == ["log", "webhook"]


@pytest.mark.parametrize("setup, message", [
    (lambda d: Settings(audit_policy_file=d / "missing.yaml", audit_log_path=str(d / "a.log")),
     "--audit-policy-file"),
    (lambda d: Settings(audit_policy_file=d / "policy.yaml", audit_log_path=str(d / "f" / "a.log")),
     "--audit-log-path"),
    (lambda d: Settings(audit_policy_file=d / "policy.yaml", audit_webhook_config_file=d / "nope.kubeconfig"),
     "--audit-webhook-config-file"),
    (lambda d: Settings(audit_policy_file=d / "bad.yaml", audit_log_path=str(d / "a.log")),
     "loaded illegal policy with 0 rules"),
])
def test_unusable_settings_fail_with_their_flag(tmp_path: Path, setup: Any, message: str) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "bad.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    (tmp_path / "f").write_text("a file where a directory should be")
    with pytest.raises(AuditConfigError, match=message.replace("-", r"\-")):
        build_auditor(setup(tmp_path))


def test_log_file_mode_is_kept_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = RotatingFile(path, max_size_mb=1)
    log.ensure()
    os.chmod(path, 0o640)
    log.write(line(600 * 1024))
    log.write(line(600 * 1024))
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    with contextlib.suppress(FileNotFoundError):
        assert len(log.backups()) == 1
