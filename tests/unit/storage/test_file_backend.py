"""What only the file backend promises: restart, key safety, atomic writes.

Everything both backends share is in `test_conformance.py`.
"""
from __future__ import annotations

import asyncio
import logging
import pathlib
import threading
from typing import Any, Callable

import pytest
import yaml

from kapi.storage.file import FileStorage
from kapi.storage.commit import DiskDiverged
from kapi.storage.interfaces import InvalidKeyError, Object, RevisionTooOldError

PREFIX = "/registry/hello.zeng.dev/foos/default/"


def foo(name: str, **spec: Any) -> Object:
    return {"kind": "Foo", "metadata": {"name": name, "uid": f"uid-{name}"}, "spec": dict(spec)}


def rv(obj: Object) -> str:
    return str(obj["metadata"]["resourceVersion"])


def set_size(size: int) -> Callable[[Object | None], Object]:
    def update(cur: Object | None) -> Object:
        assert cur is not None
        cur["spec"]["size"] = size
        return cur

    return update



async def test_file_restart_keeps_everything(tmp_path: pathlib.Path) -> None:
    store = FileStorage(tmp_path)
    for name in ["a", "b", "c"]:
        await store.create(PREFIX + name, foo(name, size=1))
    await store.guaranteed_update(PREFIX + "b", set_size(5))
    await store.create("/registry/namespaces/default", {"metadata": {"name": "default"}})
    before = (await store.list("/registry/")).items
    await store.delete("/registry/namespaces/default")  # the newest object
    revision = await store.current_revision()
    assert revision == 6
    await store.close()

    again = FileStorage(tmp_path)
    assert await again.current_revision() == revision
    after = (await again.list("/registry/")).items
    assert after == before[:-1]
    assert (await again.get(PREFIX + "b"))["spec"]["size"] == 5
    assert rv(await again.get(PREFIX + "b")) == "4"
    created = await again.create(PREFIX + "d", foo("d"))
    assert rv(created) == "7"


async def test_file_layout(tmp_path: pathlib.Path) -> None:
    store = FileStorage(tmp_path)
    await store.create(PREFIX + "x", foo("x", size=1))
    path = tmp_path / "registry/hello.zeng.dev/foos/default/x.yaml"
    on_disk = yaml.safe_load(path.read_text())
    assert on_disk["metadata"]["resourceVersion"] == "1" and on_disk["spec"] == {"size": 1}
    assert (tmp_path / "revision").read_text().strip() == "1"
    await store.delete(PREFIX + "x")
    assert not path.exists()
    assert (tmp_path / "revision").read_text().strip() == "2"
    assert not (tmp_path / "registry/hello.zeng.dev").exists()  # empty dirs pruned


UNSAFE = [
    "/registry/../etc/x",
    "/registry/foos/a/../../b",
    "/registry//a",
    "/registry/foos//a",
    "//registry/foos/a",
    "/etc/passwd",
    "registry/foos/a",
    "/registry/foos/a/",
    "/registry/foos/.hidden",
    "/registry/foos/a:b/c",
    "/registry/foos/a b",
]


@pytest.mark.parametrize("key", UNSAFE)
async def test_file_unsafe_keys(tmp_path: pathlib.Path, key: str) -> None:
    root = tmp_path / "root"
    store = FileStorage(root)
    with pytest.raises(InvalidKeyError):
        await store.create(key, foo("a"))
    with pytest.raises(InvalidKeyError):
        await store.guaranteed_update(key, lambda _: foo("a"), ignore_not_found=True)
    with pytest.raises(InvalidKeyError):
        await store.get(key)
    with pytest.raises(InvalidKeyError):
        await store.delete(key)
    assert [p.name for p in tmp_path.iterdir()] == ["root"]
    assert list(root.rglob("*")) == []
    assert await store.current_revision() == 0


async def test_file_symlink_escape_refused(tmp_path: pathlib.Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (root / "registry").mkdir(parents=True)
    (root / "registry" / "evil").symlink_to(outside)
    store = FileStorage(root)
    with pytest.raises(InvalidKeyError):
        await store.create("/registry/evil/a", foo("a"))
    assert list(outside.iterdir()) == []


async def test_file_key_clash_is_invalid(tmp_path: pathlib.Path) -> None:
    store = FileStorage(tmp_path)
    await store.create("/registry/foos/x", foo("x"))
    with pytest.raises(InvalidKeyError):
        await store.create("/registry/foos/x.yaml/y", foo("y"))
    assert await store.count("/registry/") == 1 and await store.current_revision() == 1


async def test_file_corrupt_files_skipped(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStorage(tmp_path)
    await store.create(PREFIX + "good", foo("good"))
    base = tmp_path / "registry/hello.zeng.dev/foos/default"
    (base / "broken.yaml").write_text("metadata: [unclosed\n  : :")
    (base / "list.yaml").write_text("- 1\n- 2\n")
    (base / "norv.yaml").write_text("metadata:\n  name: norv\n")
    (base / "bad name.yaml").write_text(yaml.safe_dump({"metadata": {"name": "x", "resourceVersion": "1"}}))
    (base / "notes.txt").write_text("hello")
    (tmp_path / "revision").write_text("garbage")
    with caplog.at_level(logging.WARNING, logger="kapi.storage.file"):
        again = FileStorage(tmp_path)
    assert [o["metadata"]["name"] for o in (await again.list("/registry/")).items] == ["good"]
    assert await again.current_revision() == 1
    text = caplog.text
    for name in ["broken.yaml", "list.yaml", "norv.yaml", "bad name.yaml", "notes.txt", "revision"]:
        assert name in text


async def test_file_no_temp_files_left(tmp_path: pathlib.Path) -> None:
    store = FileStorage(tmp_path)
    for i in range(5):
        await store.create(PREFIX + f"o{i}", foo(f"o{i}", n=i))
        await store.guaranteed_update(PREFIX + f"o{i}", set_size(i))
    await store.delete(PREFIX + "o0")
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []
    # A temp file left by a crash mid-write is cleaned up at load, not loaded.
    stale = tmp_path / "registry/hello.zeng.dev/foos/default/.o1.yaml.abc.tmp"
    stale.write_text("half a file")
    again = FileStorage(tmp_path)
    assert not stale.exists() and await again.count(PREFIX) == 4


class GatedFileStorage(FileStorage):
    """Holds each object write in its worker thread until the test opens the gate."""

    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(root)
        self.started = threading.Event()
        self.gate = threading.Event()

    def _persist_batch(self, writes: list[tuple[str, bytes | None, int]]) -> None:
        self.started.set()
        self.gate.wait(5)
        super()._persist_batch(writes)


async def test_file_cancelled_write_keeps_disk_and_memory_together(tmp_path: pathlib.Path) -> None:
    store = GatedFileStorage(tmp_path)
    task = asyncio.create_task(store.create(PREFIX + "a", foo("a")))
    while not store.started.is_set():
        await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.sleep(0.01)
    store.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The write reached the disk, so it is visible and its revision is taken.
    assert rv(await store.get(PREFIX + "a")) == "1"
    assert rv(await store.create(PREFIX + "b", foo("b"))) == "2"
    again = FileStorage(tmp_path)
    assert (await again.list(PREFIX)).items == (await store.list(PREFIX)).items


async def test_file_restart_forgets_event_history(tmp_path: pathlib.Path) -> None:
    """Events live in memory only: after a restart, older revisions are 410 Gone."""
    store = FileStorage(tmp_path)
    for name in "abc":
        await store.create(PREFIX + name, foo(name))
    await store.close()
    again = FileStorage(tmp_path)
    assert again.oldest_revision() == await again.current_revision() == 3
    with pytest.raises(RevisionTooOldError):
        again.watch(PREFIX, 2)
    with pytest.raises(RevisionTooOldError):
        await again.list(PREFIX, revision=2)
    assert len((await again.list(PREFIX, revision=3)).items) == 3
    async with again.watch(PREFIX, 3) as w:
        await again.delete(PREFIX + "b")
        gone = await asyncio.wait_for(w.__anext__(), 5)
    assert gone.type == "DELETED" and gone.revision == 4 and gone.prev is not None
    assert gone.prev["metadata"]["resourceVersion"] == "2"
    await again.close()


class CountingFileStorage(FileStorage):
    """Records each batch; can fail the next one before or after it touched the disk."""

    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(root)
        self.batches: list[int] = []
        self.fail_next: BaseException | None = None
        self.diverge_next = False

    def _persist_batch(self, writes: list[tuple[str, bytes | None, int]]) -> None:
        self.batches.append(len(writes))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        super()._persist_batch(writes)
        if self.diverge_next:
            self.diverge_next = False
            raise DiskDiverged("after the renames") from OSError("disk went away")


async def test_file_concurrent_writes_share_batches(tmp_path: pathlib.Path) -> None:
    """Group commit: 40 concurrent creates take far fewer than 40 disk rounds, all durable."""
    store = CountingFileStorage(tmp_path)
    created = await asyncio.gather(*(store.create(PREFIX + f"o{i}", foo(f"o{i}")) for i in range(40)))
    assert sorted(int(rv(o)) for o in created) == list(range(1, 41))
    assert sum(store.batches) == 40 and len(store.batches) < 10
    again = FileStorage(tmp_path)
    assert await again.count(PREFIX) == 40 and await again.current_revision() == 40


async def test_file_failed_batch_leaves_memory_at_the_disk_state(tmp_path: pathlib.Path) -> None:
    store = CountingFileStorage(tmp_path)
    await store.create(PREFIX + "keep", foo("keep"))
    store.fail_next = OSError(28, "No space left on device")
    results = await asyncio.gather(*(store.create(PREFIX + f"n{i}", foo(f"n{i}")) for i in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert [o["metadata"]["name"] for o in (await store.list(PREFIX)).items] == ["keep"]
    assert await store.current_revision() == 1
    # Nothing half-done is left behind, and the next write works and reuses the revisions.
    assert rv(await store.create(PREFIX + "n0", foo("n0"))) == "2"
    assert [p for p in tmp_path.rglob("*.tmp")] == []


async def test_file_batch_failing_half_way_reloads_and_expires_watchers(tmp_path: pathlib.Path) -> None:
    store = CountingFileStorage(tmp_path)
    await store.create(PREFIX + "a", foo("a"))
    watcher = store.watch(PREFIX, await store.current_revision())
    store.diverge_next = True
    with pytest.raises(OSError):
        await store.create(PREFIX + "b", foo("b"))
    # The disk got "b" before the failure: memory follows the disk, watchers must relist.
    assert sorted(o["metadata"]["name"] for o in (await store.list(PREFIX)).items) == ["a", "b"]
    with pytest.raises(RevisionTooOldError):
        await asyncio.wait_for(watcher.__anext__(), 5)
