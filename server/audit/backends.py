"""Where audit events go: kube's log backend (JSON lines, rotated) and webhook backend (batched EventLists).

Log (`--audit-log-path`, "-" = stdout): one JSON `audit.k8s.io/v1` Event per
line, as kube's `--audit-log-format=json`. The file is created (0600, its
directory 0700) at start-up, as kube's `ensureLogFile`, and rotated as kube's
lumberjack rotates it: a write that would take it past `--audit-log-maxsize`
megabytes (0 = lumberjack's default, 100) first renames it to
`<name>-<UTC time 2006-01-02T15-04-05.000><ext>` and starts a new one; then
backups beyond `--audit-log-maxbackup` (0 = keep all) and older than
`--audit-log-maxage` days (0 = any age) are removed. Lines are written in one
system call once 64 KiB wait or 50 ms after the first, so a request never waits
for a disk write of its own and a busy server makes a few dozen writes a
second, not one per request.

Webhook (`--audit-webhook-config-file`, a kubeconfig naming the receiver):
kube's batch mode. Events wait in a buffer (10,000, kube's default; beyond it
they are dropped with an error); a batch is sent when it holds
`--audit-webhook-batch-max-size` events or `--audit-webhook-batch-max-wait`
has passed since it was started, as one EventList POSTed in the background,
throttled as kube's (10 batches/s, bursts of 15) and retried with kube's
backoff on connection errors and 5xx/429 answers. Requests never wait for it.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kapi.audit.event import event_list, item_of

if TYPE_CHECKING:
    import httpx

    from kapi.auth.main_server import Connection

log = logging.getLogger("kapi.audit")

MEGABYTE = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 100  # lumberjack's default when --audit-log-maxsize is 0
BACKUP_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"  # lumberjack's 2006-01-02T15-04-05.000, milliseconds added
DEFAULT_BUFFER_SIZE = 10000
DEFAULT_BATCH_MAX_SIZE = 400
DEFAULT_BATCH_MAX_WAIT = 30.0
DEFAULT_THROTTLE_QPS = 10.0
DEFAULT_THROTTLE_BURST = 15
DEFAULT_INITIAL_BACKOFF = 10.0
RETRY_STEPS, RETRY_FACTOR, RETRY_JITTER = 5, 1.5, 0.2  # kube's webhook.DefaultRetryBackoffWithInitialDelay
WEBHOOK_TIMEOUT = 30.0
SHUTDOWN_WAIT = 10.0
FLUSH_BYTES = 64 * 1024  # the log is written once this much waits
WRITE_DELAY = 0.05  # or at most this long after an event came


class Backend(Protocol):
    """Takes batches of events as log lines (`AuditRecord.line`), in order; never blocks a request."""

    name: str

    def write(self, lines: list[bytes]) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def plugin_error(plugin: str, count: int, error: object) -> None:
    """kube's audit.HandlePluginError wording."""
    log.error("Error in audit plugin '%s' affecting %d audit events: %s", plugin, count, error)


# -- log ------------------------------------------------------------------------------------------------------
def backup_name(path: Path, now: datetime) -> Path:
    """lumberjack's backupName: `<dir>/<stem>-<UTC 2006-01-02T15-04-05.000><ext>`."""
    stem, ext = os.path.splitext(path.name)
    stamp = now.strftime(BACKUP_TIME_FORMAT) + f".{now.microsecond // 1000:03d}"
    return path.with_name(f"{stem}-{stamp}{ext}")


def backup_time(path: Path, name: str) -> datetime | None:
    """When the backup `name` of `path` was made (from its name), or None when it is not one."""
    stem, ext = os.path.splitext(path.name)
    prefix = stem + "-"
    if not (name.startswith(prefix) and name.endswith(ext)) or name == path.name:
        return None
    stamp = name[len(prefix):len(name) - len(ext)] if ext else name[len(prefix):]
    try:
        return datetime.strptime(stamp, BACKUP_TIME_FORMAT + ".%f").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


class RotatingFile:
    """lumberjack.Logger's rotation for one file, with buffered writes (see the module docstring).

    Lines wait in a list and go to the file in one `write(2)` when FLUSH_BYTES have gathered, at
    `flush()`, and before a rotation; the size that decides rotation counts them as written."""

    def __init__(self, path: Path, max_size_mb: int = 0, max_backups: int = 0, max_age_days: int = 0,
                 clock: Any = None) -> None:
        self.path = path
        self.max_bytes = (max_size_mb or DEFAULT_MAX_SIZE_MB) * MEGABYTE
        self.max_backups, self.max_age_days = max_backups, max_age_days
        self._now = clock or (lambda: datetime.now(timezone.utc))
        self._fd: int | None = None
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def ensure(self) -> None:
        """Create the file (0600) and its directory (0700) now, as kube does before serving."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(self.path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))

    def write(self, data: bytes) -> None:
        """Append `data`, rotating first when it would not fit; ValueError when it can never fit."""
        size = len(data)
        if self._fd is None or self._size + size > self.max_bytes:
            self._make_room(size)
        self._pending.append(data)
        self._size += size
        self._pending_bytes += size
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def write_many(self, lines: list[bytes]) -> None:
        """Append a batch, written once FLUSH_BYTES wait (or at `flush()`); line by line (rotating, dropping what
        can never fit with a ValueError at the end) when it would not fit."""
        total = sum(map(len, lines))
        if self._fd is not None and self._size + total <= self.max_bytes:
            self._pending.extend(lines)
            self._size += total
            self._pending_bytes += total
            if self._pending_bytes >= FLUSH_BYTES:
                self.flush()
        else:
            too_big: list[ValueError] = []
            for line in lines:
                try:
                    self.write(line)
                except ValueError as exc:
                    too_big.append(exc)
            if too_big:
                self.flush()
                raise ValueError(f"{too_big[0]} ({len(too_big)} dropped)")

    def _make_room(self, incoming: int) -> None:
        if incoming > self.max_bytes:
            raise ValueError(f"write length {incoming} exceeds maximum file size {self.max_bytes}")
        if self._fd is None:
            self._open_existing_or_new(incoming)
        else:
            self.rotate()

    def _open_existing_or_new(self, incoming: int) -> None:
        self._mill()
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._open_new()
            return
        if size + incoming >= self.max_bytes:
            self.rotate()
            return
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = size

    def _open_new(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = 0o600
        with contextlib.suppress(FileNotFoundError):
            mode = self.path.stat().st_mode & 0o777
        if self.path.exists():
            target = backup_name(self.path, self._now())
            while target.exists():  # two rotations within a millisecond: never overwrite a backup
                target = backup_name(self.path, self._now() + timedelta(milliseconds=1))
            os.rename(self.path, target)
        self._fd = os.open(self.path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_APPEND, mode)
        self._size = 0

    def rotate(self) -> None:
        """Close the file, move it aside as a timestamped backup, start a new one, remove old backups."""
        self.close()
        self._open_new()
        self._mill()

    def backups(self) -> list[tuple[datetime, Path]]:
        """The backups of this file, newest first."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.path.parent):
                when = backup_time(self.path, entry.name)
                if when is not None and entry.is_file():
                    found.append((when, Path(entry.path)))
        return sorted(found, reverse=True)

    def _mill(self) -> None:
        """lumberjack's millRunOnce: drop backups beyond max_backups, then those older than max_age_days."""
        if not self.max_backups and not self.max_age_days:
            return
        files = self.backups()
        remove = []
        if self.max_backups and len(files) > self.max_backups:
            remove += files[self.max_backups:]
            files = files[:self.max_backups]
        if self.max_age_days:
            cutoff = self._now() - timedelta(days=self.max_age_days)
            remove += [f for f in files if f[0] < cutoff]
        for _, path in remove:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def flush(self) -> None:
        """Write what waits, in one system call (more if the kernel takes it in parts)."""
        if not self._pending or self._fd is None:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None


class _Stdout:
    """`--audit-log-path -`: lines to standard output, no rotation."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._pending.append(data)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def write_many(self, lines: list[bytes]) -> None:
        self._pending.extend(lines)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

    def close(self) -> None:
        self.flush()


class LogBackend:
    """kube's log backend in JSON format (see the module docstring)."""

    name = "log"

    def __init__(self, path: str, max_age_days: int = 0, max_backups: int = 0, max_size_mb: int = 0) -> None:
        self.target: RotatingFile | _Stdout
        if path == "-":
            self.target = _Stdout()
        else:
            self.target = RotatingFile(Path(path), max_size_mb, max_backups, max_age_days)
            self.target.ensure()
        self._timer: asyncio.TimerHandle | None = None

    def write(self, lines: list[bytes]) -> None:
        """Append a batch (rotating between lines as needed); it reaches the file within WRITE_DELAY."""
        try:
            self.target.write_many(lines)
        except (OSError, ValueError) as exc:
            plugin_error(self.name, len(lines) if isinstance(exc, OSError) else 1, exc)
        if self._timer is None and self.target.pending:
            try:
                self._timer = asyncio.get_running_loop().call_later(WRITE_DELAY, self.flush)
            except RuntimeError:  # no event loop (a synchronous caller): at once
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.target.flush()
        except OSError as exc:
            plugin_error(self.name, 1, exc)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.flush()
        self.target.close()


# -- webhook --------------------------------------------------------------------------------------------------
class _Throttle:
    """A token bucket: `qps` sends a second on average, `burst` at once."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps, self.burst = qps, burst
        self._tokens, self._at = float(burst), time.monotonic()

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.qps)


class WebhookBackend:
    """kube's webhook backend in batch mode (see the module docstring)."""

    name = "webhook"

    def __init__(self, connection: Connection, batch_max_size: int = DEFAULT_BATCH_MAX_SIZE,
                 batch_max_wait: float = DEFAULT_BATCH_MAX_WAIT, buffer_size: int = DEFAULT_BUFFER_SIZE,
                 throttle_qps: float = DEFAULT_THROTTLE_QPS, throttle_burst: int = DEFAULT_THROTTLE_BURST,
                 initial_backoff: float = DEFAULT_INITIAL_BACKOFF) -> None:
        self.connection = connection
        self.batch_max_size, self.batch_max_wait = batch_max_size, batch_max_wait
        self.buffer_size, self.initial_backoff = buffer_size, initial_backoff
        self._buffer: collections.deque[bytes] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._waiting = False
        self._stopping = False
        self._collector: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._throttle = _Throttle(throttle_qps, throttle_burst)
        self._client: httpx.AsyncClient | None = None
        self.dropped = 0

    def write(self, lines: list[bytes]) -> None:
        room = max(self.buffer_size - len(self._buffer), 0)
        if room < len(lines):
            self.dropped += len(lines) - room
            plugin_error(self.name, len(lines) - room, "audit buffer queue blocked")
        self._buffer.extend(item_of(line) for line in lines[:room])
        if self._waiting and self._wakeup is not None:
            self._waiting = False
            self._wakeup.set()

    async def start(self) -> None:
        import httpx

        conn = self.connection
        verify: Any = conn.ssl_context() if conn.server.startswith("https:") else True
        self._client = httpx.AsyncClient(verify=verify, timeout=WEBHOOK_TIMEOUT, headers=conn.headers())
        self._wakeup = asyncio.Event()
        self._collector = asyncio.create_task(self._run(), name="kapi-audit-webhook")

    async def _run(self) -> None:
        while not self._stopping:
            batch = await self._collect()
            if batch:
                await self._throttle.wait()
                task = asyncio.create_task(self._send(batch))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)

    async def _collect(self) -> list[bytes]:
        """kube's collectEvents: up to batch_max_size events, or what came within batch_max_wait."""
        assert self._wakeup is not None
        batch: list[bytes] = []
        deadline = time.monotonic() + self.batch_max_wait
        while len(batch) < self.batch_max_size and not self._stopping:
            while self._buffer and len(batch) < self.batch_max_size:
                batch.append(self._buffer.popleft())
            if len(batch) >= self.batch_max_size:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wakeup.clear()
            self._waiting = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), left)
            self._waiting = False
        return batch

    async def _send(self, batch: list[bytes]) -> None:
        """POST one EventList, retrying as kube's webhook does; an error log when it finally fails."""
        import httpx

        assert self._client is not None
        body = event_list(batch)
        delay = self.initial_backoff
        for attempt in range(RETRY_STEPS):
            try:
                response = await self._client.post(self.connection.server, content=body,
                                                   headers={"Content-Type": "application/json"})
            except httpx.HTTPError as exc:
                error: object = f'Post "{self.connection.server}": {exc}'
                retry = isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError))
            else:
                if 200 <= response.status_code < 300:
                    return
                error = f"the server answered {response.status_code}: {response.text[:200]}"
                retry = response.status_code >= 500 or response.status_code == 429
            if not retry or attempt == RETRY_STEPS - 1 or self._stopping:
                plugin_error(self.name, len(batch), error)
                return
            await asyncio.sleep(delay * (1 + random.uniform(0, RETRY_JITTER)))
            delay *= RETRY_FACTOR

    async def close(self) -> None:
        """Send what is buffered, wait (a bounded while) for the sends in flight, close the client."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._collector is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_max_size, len(self._buffer)))]
            task = asyncio.create_task(self._send(batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if self._sends:
            _, pending = await asyncio.wait(set(self._sends), timeout=SHUTDOWN_WAIT)
            for task in pending:
                task.cancel()
            if pending:
                plugin_error(self.name, len(pending), "shutting down before the webhook answered")
        if self._client is not None:
            await self._client.aclose()
            self._client = None


__all__ = ["Backend", "LogBackend", "RotatingFile", "WebhookBackend", "backup_name", "backup_time"]
