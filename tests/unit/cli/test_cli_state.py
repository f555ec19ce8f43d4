"""Instance state files: atomic records, stale detection, conflicts, and the commands that read them."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from typer.testing import CliRunner

from kapi_cli import state as st
from kapi_cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def spawn() -> Iterator[object]:
    """Start throw-away processes; `kapi` in the command line makes them look like kapi servers."""
    procs: list[subprocess.Popen[bytes]] = []

    def factory(*extra: str, code: str = "import time; time.sleep(60)") -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", code, *extra])
        procs.append(proc)
        exec_done(proc.pid)
        return proc

    yield factory
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def exec_done(pid: int) -> None:
    """Wait until the child runs its own command line (right after fork it still shows pytest's)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    deadline = time.monotonic() + 5
    while cmdline.exists() and time.monotonic() < deadline:
        try:
            if b"-c\0" in cmdline.read_bytes() or (st._proc_stat_fields(pid) or ["Z"])[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.01)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is free
    return proc.pid


def record(name: str, pid: int, *, secure: int = 0, insecure: int = 0, root: Path = Path("/tmp/r"),
           backend: str = "file", log_file: Path | None = None) -> st.InstanceState:
    state = st.new_state(name=name, bind_address="127.0.0.1", secure_port=secure, insecure_port=insecure,
                         backend=backend, file_rootpath=root, log_file=log_file, kubeconfig=None,
                         kubectl_disabled=False, pid=pid)
    st.write_state(state)
    return state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- records ---------------------------------------------------------------------------------------
def test_state_round_trip_and_layout(home: Path) -> None:
    state = record("a", os.getpid(), secure=8443, insecure=6080)
    path = home / "instances" / "a.json"
    data = json.loads(path.read_text())
    assert data["urls"] == ["https://127.0.0.1:8443", "http://127.0.0.1:6080"]
    assert {"name", "pid", "bind_address", "secure_port", "insecure_port", "backend", "file_rootpath",
            "log_file", "started_at", "kapi_version"} <= data.keys()
    assert not any("token" in key for key in data)
    assert st.read_state("a") == state
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary file left behind


def test_missing_and_broken_state(home: Path) -> None:
    assert st.read_state("nope") is None
    (home / "instances").mkdir(parents=True)
    (home / "instances" / "broken.json").write_text("{not json")
    broken = st.read_state("broken")
    assert broken is not None and not broken.alive()


def test_remove_state_only_for_its_pid() -> None:
    record("a", 12345)
    assert st.remove_state("a", pid=999) is False
    assert st.read_state("a") is not None
    assert st.remove_state("a", pid=12345) is True
    assert st.read_state("a") is None


@pytest.mark.parametrize("name", ["default", "x", "e2e-1", "a.b_c", "a" * 63])
def test_valid_names(name: str) -> None:
    assert st.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "../x", "a/b", "-a", "a-", "a" * 64, "x.json "])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        st.validate_name(name)


def test_url_host() -> None:
    assert st.https_url("0.0.0.0", 1) == "https://127.0.0.1:1"
    assert st.http_url("::1", 2) == "http://[::1]:2"
    assert st.http_url("10.0.0.5", 3) == "http://10.0.0.5:3"


# -- liveness ----------------------------------------------------------------------------------------
def test_alive_kapi_process(spawn) -> None:  # type: ignore[no-untyped-def]
    proc = spawn("kapi-sleeper")
    assert st.is_alive(proc.pid)
    assert st.is_alive(proc.pid, st.process_start_ticks(proc.pid))


def test_gone_pid_is_stale() -> None:
    assert not st.is_alive(dead_pid())
    assert not st.is_alive(0) and not st.is_alive(-1)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs procfs")
def test_reused_pid_is_stale(spawn) -> None:  # type: ignore[no-untyped-def]
    other = spawn()  # not a kapi command line
    assert not st.is_alive(other.pid)
    kapi_like = spawn("kapi-sleeper")
    ticks = st.process_start_ticks(kapi_like.pid)
    assert ticks is not None
    assert not st.is_alive(kapi_like.pid, ticks + 1)  # same pid, another process start


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs")
def test_zombie_is_stale(spawn) -> None:  # type: ignore[no-untyped-def]
    proc = spawn("kapi-sleeper", code="pass")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and st._proc_stat_fields(proc.pid)[0] != "Z":  # type: ignore[index]
        time.sleep(0.02)
    assert not st.is_alive(proc.pid)  # exited, not yet reaped: not running


def test_scan_cleans_stale(spawn) -> None:  # type: ignore[no-untyped-def]
    alive = spawn("kapi-sleeper")
    record("live", alive.pid)
    record("gone", dead_pid())
    found = st.scan(clean=True)
    assert [s.name for s in found.running] == ["live"]
    assert [s.name for s in found.stale] == ["gone"]
    assert st.read_state("gone") is None and st.read_state("live") is not None


# -- conflicts ---------------------------------------------------------------------------------------
def test_same_name_refused(spawn) -> None:  # type: ignore[no-untyped-def]
    record("x", spawn("kapi-sleeper").pid, insecure=free_port())
    with pytest.raises(st.ConflictError, match="instance named 'x' is already running"):
        st.check_can_start("x", "127.0.0.1", [free_port()], Path("/tmp/other"), "memory")


def test_port_of_running_instance_refused(spawn) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    record("x", spawn("kapi-sleeper").pid, secure=port)
    with pytest.raises(st.ConflictError, match=f"port {port} is already used by kapi instance 'x'"):
        st.check_can_start("y", "127.0.0.1", [0, port], Path("/tmp/other"), "memory")


def test_bound_port_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(st.ConflictError, match=f"port {port} on 127.0.0.1 is already in use"):
            st.check_can_start("y", "127.0.0.1", [port], Path("/tmp/other"), "file")


def test_shared_file_root_refused(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    record("x", spawn("kapi-sleeper").pid, insecure=free_port(), root=tmp_path)
    with pytest.raises(st.ConflictError, match="file root"):
        st.check_can_start("y", "127.0.0.1", [free_port()], tmp_path, "file")
    st.check_can_start("y", "127.0.0.1", [free_port()], tmp_path, "memory")  # memory data is not shared


def test_stale_same_name_is_cleaned_and_allowed() -> None:
    port = free_port()
    record("x", dead_pid(), insecure=port)
    notes = st.check_can_start("x", "127.0.0.1", [port], Path("/tmp/r"), "file")
    assert notes and "stale" in notes[0]
    assert st.read_state("x") is None


# -- commands over state -----------------------------------------------------------------------------
def test_status_missing_exits_1() -> None:
    result = runner.invoke(app, ["status", "nope", "--output", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "not running"


def test_status_stale_reports_and_cleans() -> None:
    record("x", dead_pid(), insecure=free_port())
    result = runner.invoke(app, ["status", "x", "-o", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "stale"
    assert "not running" in result.stderr
    assert st.read_state("x") is None


def test_status_running_but_not_answering_exits_1(spawn) -> None:  # type: ignore[no-untyped-def]
    record("x", spawn("kapi-sleeper").pid, insecure=free_port())
    result = runner.invoke(app, ["status", "x", "-o", "json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "running" and body["ready"] is False


def test_status_bad_output() -> None:
    assert runner.invoke(app, ["status", "x", "-o", "xml"]).exit_code == 2


def test_list_shows_running_and_stale(spawn) -> None:  # type: ignore[no-untyped-def]
    record("live", spawn("kapi-sleeper").pid, insecure=free_port())
    record("gone", dead_pid(), insecure=free_port())
    result = runner.invoke(app, ["list", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert {(r["name"], r["status"]) for r in json.loads(result.stdout)} == {("live", "running"), ("gone", "stale")}
    assert st.read_state("gone") is None
    table = runner.invoke(app, ["list"])
    assert "live" in table.stdout and "gone" not in table.stdout


def test_list_empty() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "no kapi instances" in result.stdout
    assert json.loads(runner.invoke(app, ["list", "-o", "json"]).stdout) == []


def test_stop_terminates_and_removes_state(spawn) -> None:  # type: ignore[no-untyped-def]
    proc = spawn("kapi-sleeper")
    record("x", proc.pid)
    result = runner.invoke(app, ["stop", "x"])
    assert result.exit_code == 0, result.output
    assert "gracefully" in result.stderr
    assert proc.wait(timeout=5) != 0
    assert st.read_state("x") is None


def test_stop_kills_after_timeout(spawn) -> None:  # type: ignore[no-untyped-def]
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, "kapi-stubborn"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ok\n"  # SIGTERM handler installed
        record("x", proc.pid)
        result = runner.invoke(app, ["stop", "x", "--timeout", "0.5"])
        assert result.exit_code == 0, result.output
        assert "killed" in result.stderr
        assert proc.wait(timeout=5) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_stop_stale_and_missing() -> None:
    record("x", dead_pid())
    result = runner.invoke(app, ["stop", "x"])
    assert result.exit_code == 0 and "stale" in result.stderr
    assert st.read_state("x") is None
    assert runner.invoke(app, ["stop", "x"]).exit_code == 1


def test_logs(home: Path) -> None:
    log = home / "logs" / "x.log"
    log.parent.mkdir(parents=True)
    log.write_text("one\ntwo\nthree\n")
    record("x", dead_pid(), log_file=log)
    assert runner.invoke(app, ["logs", "x"]).stdout == "one\ntwo\nthree\n"
    assert runner.invoke(app, ["logs", "x", "--tail", "2"]).stdout == "two\nthree\n"
    assert runner.invoke(app, ["logs", "x", "--follow"]).stdout == "one\ntwo\nthree\n"  # not running: returns
    st.remove_state("x")
    assert runner.invoke(app, ["logs", "x"]).stdout == "one\ntwo\nthree\n"  # logs outlive the instance
    assert runner.invoke(app, ["logs", "other"]).exit_code == 1


def test_logs_of_foreground_instance(spawn) -> None:  # type: ignore[no-untyped-def]
    record("x", spawn("kapi-sleeper").pid)
    result = runner.invoke(app, ["logs", "x"])
    assert result.exit_code == 1 and "foreground" in result.stderr


def test_claim_state_is_exclusive(spawn) -> None:  # type: ignore[no-untyped-def]
    holder = record("x", spawn("kapi-sleeper").pid)
    rival = st.new_state(name="x", bind_address="127.0.0.1", secure_port=0, insecure_port=1, backend="memory",
                         file_rootpath=Path("/tmp/r"), log_file=None, kubeconfig=None, kubectl_disabled=False,
                         pid=os.getpid())
    with pytest.raises(st.ConflictError, match="already running"):
        st.claim_state(rival)
    assert st.read_state("x") == holder
    st.remove_state("x")
    st.claim_state(rival)
    assert st.read_state("x") == rival
    record("x", dead_pid())  # stale holder: replaced
    st.claim_state(rival)
    assert st.read_state("x") == rival
    assert sorted(p.name for p in (st.instances_dir()).iterdir()) == ["x.json"]
