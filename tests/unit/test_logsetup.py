"""A `kapi start` process's logging: the rotated files' names and order, and a real process whose output
(log records, prints, raw fd writes) lands in its log file and rotates there."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kapi.logsetup import python_level, remove_backups, rotated_files, shift_backups

ROOT = Path(__file__).resolve().parents[2]
LIMIT = int(0.01 * 1024 * 1024)  # --log-file-max-size 0.01 (MB)


def test_rotated_files_oldest_first_then_current(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    assert rotated_files(log) == []
    for name in ("k.log", "k.log.1", "k.log.2", "k.log.10", "k.log.x", "k.log.0", "other.log.1", "k.log.1.bak"):
        (tmp_path / name).write_text(name)
    assert [p.name for p in rotated_files(log)] == ["k.log.10", "k.log.2", "k.log.1", "k.log"]
    (tmp_path / "k.log").unlink()
    assert [p.name for p in rotated_files(log)] == ["k.log.10", "k.log.2", "k.log.1"]
    assert rotated_files(tmp_path / "missing" / "k.log") == []


def test_shift_backups_drops_the_oldest(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    for name, text in (("k.log", "c"), ("k.log.1", "b"), ("k.log.2", "a")):
        (tmp_path / name).write_text(text)
    shift_backups(log, 2)
    assert not log.exists()
    assert [(p.name, p.read_text()) for p in rotated_files(log)] == [("k.log.2", "b"), ("k.log.1", "c")]
    log.write_text("d")
    shift_backups(log, 0)  # no backups kept: the log just starts again
    assert not log.exists() and len(rotated_files(log)) == 2


def test_remove_backups_keeps_the_current_log(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    for name in ("k.log", "k.log.1", "k.log.7"):
        (tmp_path / name).write_text(name)
    remove_backups(log)
    assert rotated_files(log) == [log]


def test_levels() -> None:
    assert python_level("INFO") == 20 and python_level("trace") == 5
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        python_level("loud")


def run_logging(tmp_path: Path, body: str, **settings: object) -> None:
    """Configure logging in a real Python process as `kapi start` does, then run `body` there."""
    script = textwrap.dedent(f"""
        import logging, os, sys
        from pathlib import Path
        from kapi.logsetup import configure_logging
        configure_logging(**{settings!r}, log_file=Path({str(tmp_path / 'k.log')!r}))
        log = logging.getLogger("kapi.test")
    """) + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""  # everything went into the log file


def test_output_goes_to_the_log_file_and_rotates_there(tmp_path: Path) -> None:
    run_logging(tmp_path, """
        print("banner line", flush=True)
        os.write(2, b"raw stderr line\\n")
        for i in range(400):
            log.info("record %03d %s", i, "x" * 60)
        log.warning("last")
        print("after rotation", flush=True)
    """, level="info", max_size_mb=0.01, max_backups=3)
    files = rotated_files(tmp_path / "k.log")
    assert [p.name for p in files] == ["k.log.3", "k.log.2", "k.log.1", "k.log"]
    for old in files[:-1]:
        assert LIMIT <= old.stat().st_size < LIMIT + 200  # rotated just past the size (one record)
    text = "".join(p.read_text() for p in files)
    records = [line for line in text.splitlines() if "record " in line]
    numbers = [int(line.split("record ")[1][:3]) for line in records]
    assert numbers == sorted(numbers) and numbers[-1] == 399  # in order, none twice; the oldest dropped
    assert numbers[0] > 0 and "banner line" not in text  # 4 files of 10 KB cannot hold all 400
    current = files[-1].read_text().splitlines()
    assert current[-2].startswith("W") and current[-2].endswith("] last") and current[-1] == "after rotation"


def test_without_rotation_everything_stays(tmp_path: Path) -> None:
    run_logging(tmp_path, """
        print("banner line", flush=True)
        os.write(2, b"raw stderr line\\n")
        for i in range(200):
            log.info("record %03d", i)
        log.debug("hidden at info")
    """, level="info", max_size_mb=0, max_backups=3)
    assert rotated_files(tmp_path / "k.log") == [tmp_path / "k.log"]
    lines = (tmp_path / "k.log").read_text().splitlines()
    assert lines[:2] == ["banner line", "raw stderr line"] and len(lines) == 202


def test_json_lines_and_verbosity(tmp_path: Path) -> None:
    run_logging(tmp_path, """
        from kapi.logsetup import vlog
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("somelib").info("third-party info stays out")
        logging.getLogger("somelib").warning("third-party warning")
        vlog(log, 2, 4, "shown", {"k": 1})
        vlog(log, 5, 4, "not shown", {})
        log.debug("debug from -v=4")
    """, level="warning", verbosity=4, fmt="json")
    lines = [json.loads(line) for line in (tmp_path / "k.log").read_text().splitlines()]
    assert [(line["msg"], line.get("v")) for line in lines] == [
        ("Application startup complete.", 0), ("third-party warning", 0), ("shown", 2), ("debug from -v=4", 4)]
    assert lines[2]["k"] == 1 and lines[2]["caller"].startswith("<string>:") and lines[2]["ts"] > 1.6e12
