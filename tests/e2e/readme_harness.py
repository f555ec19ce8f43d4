"""Running README.md's code blocks as printed: the sandbox, the shell-block runner and the generic rules.

Used by tests/e2e/test_readme.py (which says what is checked and why). A shell block runs in one `bash`
(or `sh`) process, as printed, with a marker after each command carrying its exit status, so each
command's output and status can be checked on its own. The sandbox is a temporary HOME, KAPI_HOME, TMPDIR
and working directory (the checkout's top-level entries linked into it); `kapi` on PATH is this
checkout's console script under this interpreter, `python` is this interpreter, `kubectl` the real one.
Whatever a block leaves running is killed afterwards: its process group and every instance in its
KAPI_HOME.
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FIXED_PORTS = (6080, 6081, 8443, 8444)
PORT_LOCK = Path(tempfile.gettempdir()) / "kapi-readme-fixed-ports.lock"
BLOCK_TIMEOUT = 180.0
MARK = re.compile(r"@@kapi-readme (begin|end) (\d+)(?: (\d+))?@@")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_]\w*)\1")


# ---------------------------------------------------------------- reading the README

@dataclass(frozen=True)
class Block:
    section: str
    lang: str
    text: str
    line: int


def readme_blocks() -> list[Block]:
    """The runnable fenced blocks, each with the heading it sits under."""
    lines, section, i = README.read_text().splitlines(), "", 0
    blocks: list[Block] = []
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            if fence.group(1) in ("bash", "sh", "python"):
                blocks.append(Block(section, fence.group(1), "\n".join(body) + "\n", start + 1))
        elif lines[i].startswith("#"):
            section = lines[i].lstrip("#").strip()
        i += 1
    return blocks


class Section:
    """The blocks under one heading; a test takes the ones it checks, the rest run by the generic rules."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.blocks = [b for b in readme_blocks() if b.section == title]
        assert self.blocks, f"README.md has no runnable block under {title!r}"
        self.taken: list[Block] = []

    def take(self, contains: str) -> Block:
        found = [b for b in self.blocks if contains in b.text and b not in self.taken]
        assert len(found) == 1, f"{len(found)} blocks under {self.title!r} contain {contains!r}"
        self.taken.append(found[0])
        return found[0]

    def run_the_rest(self, box: "Sandbox") -> None:
        for block in self.blocks:
            if block not in self.taken:
                run_generic(box, block)
                box.stop_everything()


@dataclass
class Command:
    text: str
    comment: str
    notes: list[str] = field(default_factory=list)  # comment-only lines right below it
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def code(self) -> str:
        return split_comment(self.text.splitlines()[0])[0]

    @property
    def expected_error(self) -> str | None:
        return " ".join(self.notes) if self.notes and self.notes[0].startswith("error:") else None


def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: `#` outside quotes, at the start or after a blank."""
    quote, escaped = "", False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def parse_commands(script: str) -> list[Command]:
    """The commands of a shell block, continuation lines and here-documents included."""
    lines, i = script.splitlines(), 0
    commands: list[Command] = []
    while i < len(lines):
        code, comment = split_comment(lines[i])
        if not code.strip():
            if comment and commands:
                commands[-1].notes.append(comment)
            i += 1
            continue
        text, comments, heredocs = [lines[i]], [comment], HEREDOC.findall(code)
        while code.endswith("\\") and i + 1 < len(lines):
            i += 1
            text.append(lines[i])
            code, comment = split_comment(lines[i])
            comments.append(comment)
            heredocs += HEREDOC.findall(code)
        for _, word in heredocs:
            while i + 1 < len(lines):
                i += 1
                text.append(lines[i])
                if lines[i].strip() == word:
                    break
        commands.append(Command("\n".join(text), " ".join(c for c in comments if c)))
        i += 1
    return commands


def normalised(text: str) -> str:
    return " ".join(text.split())


def is_foreground_start(command: Command) -> bool:
    code = " ".join(split_comment(line)[0] for line in command.text.splitlines())
    return bool(re.match(r"^(.*&&\s*)?kapi start\b", code)) and "--detach" not in code and not code.endswith("&")


# ---------------------------------------------------------------- processes

def _proc_stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies are not alive: they wait for a parent that may be gone)."""
    members = []
    for entry in Path("/proc").iterdir():
        stat = _proc_stat(entry.name) if entry.name.isdigit() else None
        if stat and int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.1)
    return value


@contextlib.contextmanager
def fixed_ports() -> Iterator[None]:
    """One sandbox at a time on the README's ports, and only once nothing else holds them."""
    with open(PORT_LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            wait_for(f"ports {FIXED_PORTS} to be free", lambda: all(map(port_free, FIXED_PORTS)), 60)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------- the sandbox

@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    commands: list[Command]
    out: Path
    err: Path


@dataclass
class Run:
    commands: list[Command]
    pgid: int
    returncode: int | None
    stdout: str
    stderr: str
    ready: dict[str, Any] | None = None  # the instance state of a foreground `kapi start`, once ready

    def command(self, code: str) -> Command:
        """The command whose first line is `code` (comment aside), or the one line starting with it."""
        exact = [c for c in self.commands if c.code == code]
        found = exact or [c for c in self.commands if c.code.startswith(code)]
        assert len(found) == 1, f"{len(found)} commands match {code!r}: {[c.code for c in self.commands]}"
        return found[0]


class Sandbox:
    """HOME, KAPI_HOME, TMPDIR and a working directory like a clone's; runs blocks and cleans up after them."""

    def __init__(self, root: Path, fixed_ports: bool = True) -> None:
        self.fixed_ports = fixed_ports  # it holds the README's ports (under `fixed_ports()`): free them after
        self.root, self.home, self.kapi_home = root, root / "home", root / "kapi-home"
        self.work, self.tmp, self.bin = root / "work", root / "tmp", root / "bin"
        for path in (self.home, self.kapi_home, self.work, self.tmp, self.bin):
            path.mkdir(parents=True)
        for entry in REPO.iterdir():
            if not entry.name.startswith(".") and not entry.name.endswith(".egg-info"):
                (self.work / entry.name).symlink_to(entry)
        module, function = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["kapi"].split(":")
        shims = {"kapi": f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n",
                 "python": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n'}
        shims["python3"] = shims["python"]
        for name, text in shims.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        search = os.pathsep.join([str(self.bin), str(Path(shutil.which("kubectl") or "/usr/bin/kubectl").parent),
                                  os.environ.get("PATH", "")])
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KUBECONFIG", "KAPI_"))}
        self.env.update(HOME=str(self.home), KAPI_HOME=str(self.kapi_home), TMPDIR=str(self.tmp), PATH=search,
                        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
        self.groups: list[int] = []
        self.counter = itertools.count()

    def materialise(self, *relative: str) -> None:
        """Real copies instead of links (scripts that write beside themselves must not write into the checkout)."""
        for rel in relative:
            parts = Path(rel).parts
            for depth in range(1, len(parts) + 1):
                here = self.work.joinpath(*parts[:depth])
                if here.is_symlink():
                    source = here.resolve()
                    here.unlink()
                    if depth == len(parts):
                        shutil.copytree(source, here)
                    else:
                        here.mkdir()
                        for child in source.iterdir():
                            (here / child.name).symlink_to(child)

    def sandboxed(self, text: str) -> str:
        return text.replace("/tmp/", f"{self.tmp}/")

    def run(self, script: str, shell: str = "bash", *, foreground: bool = False) -> Run:
        """Run a shell block as printed; with `foreground`, return once its `kapi start` is ready."""
        return self.finish(self.start(script, shell), foreground=foreground)

    def start(self, script: str, shell: str = "bash") -> Started:
        commands = parse_commands(self.sandboxed(script))
        lines = ['__readme_mark() { printf "\\n%s\\n" "$1"; printf "\\n%s\\n" "$1" >&2; }']
        for n, command in enumerate(commands):
            lines += [f"__readme_mark '@@kapi-readme begin {n}@@'", command.text,
                      f'__readme_mark "@@kapi-readme end {n} $?@@"']
        n = next(self.counter)
        path, out, err = (self.root / f"block-{n}.{ext}" for ext in ("sh", "out", "err"))
        path.write_text("\n".join(lines) + "\n")
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen([shell, str(path)], cwd=self.work, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=stdout, stderr=stderr, start_new_session=True)
        self.groups.append(proc.pid)
        return Started(proc, commands, out, err)

    def finish(self, started: Started, foreground: bool = False) -> Run:
        """Wait for a started block (or, with `foreground`, for its `kapi start` to be ready) and read it."""
        proc, commands, out, err = started.proc, started.commands, started.out, started.err
        ready = None
        try:
            if foreground:
                ready = self._wait_ready(proc)
            else:
                proc.wait(timeout=BLOCK_TIMEOUT)
        except (subprocess.TimeoutExpired, AssertionError) as exc:
            raise AssertionError(f"{exc}\n{self.outputs(out, err)}") from None
        for stream, path in (("stdout", out), ("stderr", err)):
            self._split(commands, stream, path.read_text(errors="replace"))
        run = Run(commands, proc.pid, proc.poll(), out.read_text(errors="replace"), err.read_text(errors="replace"),
                  ready)
        if not foreground:
            unfinished = [c.code for c in commands if c.rc is None]
            assert not unfinished, f"the block stopped before {unfinished}\n{self.report(run)}"
        return run

    @staticmethod
    def _split(commands: list[Command], stream: str, output: str) -> None:
        current: list[str] | None = None
        for line in output.splitlines():
            mark = MARK.fullmatch(line)
            if not mark:
                if current is not None:
                    current.append(line)
                continue
            n = int(mark.group(2))
            if mark.group(1) == "begin":
                current = []
            else:
                setattr(commands[n], stream, "\n".join(current or []).strip("\n"))
                commands[n].rc, current = int(mark.group(3)), None
        if current is not None:  # the foreground command, still running
            setattr(commands[-1], stream, "\n".join(current).strip("\n"))

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            assert proc.poll() is None, f"the block exited ({proc.returncode}) before a kapi instance was ready"
            for state in self.instances():
                url = next((u for u in state.get("urls", []) if u.startswith("http:")), state["urls"][0])
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/readyz", verify=False, timeout=1).status_code == 200:
                        return state
            return None

        return wait_for("the block's `kapi start` to answer /readyz", ready, 60)

    def instances(self) -> list[dict[str, Any]]:
        states = []
        for path in sorted((self.kapi_home / "instances").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(path.read_text())
                if alive(int(state["pid"])):
                    states.append(state)
        return states

    def shell(self, command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command of the test's own (not the README's), in the sandbox's environment."""
        result = subprocess.run(["bash", "-c", command], cwd=self.work, env=self.env, input=input,
                                capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
        if check:
            assert result.returncode == 0, f"{command}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def python(self, source: str, name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        where = cwd or self.work
        where.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(source)
        return subprocess.run([sys.executable, *args, name], cwd=where, env=self.env, capture_output=True,
                              text=True, timeout=BLOCK_TIMEOUT)

    def check_statuses(self, run: Run, expect: dict[str, int] | None = None) -> None:
        """Each command exits 0, or as `expect` says, or fails as the `# error:` comment below it says."""
        for command in run.commands:
            if command.rc is None:
                continue
            wanted = (expect or {}).get(command.code, 0)
            error = command.expected_error
            if error:
                assert command.rc != 0, f"{command.code!r} should fail with {error!r}\n{self.report(run)}"
                assert normalised(error[len("error:"):]) in normalised(command.stderr), self.report(run)
            else:
                assert command.rc == wanted, f"{command.code!r} exited {command.rc}\n{self.report(run)}"

    def assert_nothing_left(self, run: Run) -> None:
        """The block stopped what it started: no instance, no process of its group (etcd included)."""
        wait_for("the block's servers to be stopped",
                 lambda: not self.instances() and not group_members(run.pgid), 15)

    def stop_everything(self) -> None:
        for pgid in self.groups:
            self._terminate(lambda sig, g=pgid: os.killpg(g, sig), lambda g=pgid: bool(group_members(g)))
        for state in self.instances():
            pid = int(state["pid"])
            self._terminate(lambda sig, p=pid: os.kill(p, sig), lambda p=pid: alive(p))
        self.groups.clear()
        if self.fixed_ports:
            wait_for(f"ports {FIXED_PORTS} to be free", lambda: all(map(port_free, FIXED_PORTS)), 30)

    @staticmethod
    def _terminate(send: Any, running: Any) -> None:
        for sig, patience in ((signal.SIGTERM, 12.0), (signal.SIGKILL, 5.0)):
            if not running():
                return
            with contextlib.suppress(ProcessLookupError):
                send(sig)
            deadline = time.monotonic() + patience
            while running() and time.monotonic() < deadline:
                time.sleep(0.05)

    def outputs(self, out: Path, err: Path) -> str:
        logs = [f"--- {p.name} (tail)\n" + "\n".join(p.read_text(errors="replace").splitlines()[-25:])
                for p in sorted((self.kapi_home / "logs").glob("*.log"))]
        return "\n".join([f"--- stdout\n{out.read_text(errors='replace')}",
                          f"--- stderr\n{err.read_text(errors='replace')}", *logs])

    def report(self, run: Run) -> str:
        parts = [f"$ {c.text}\n[exit {c.rc}]\n{c.stdout}\n{c.stderr}".rstrip() for c in run.commands]
        return "\n".join(parts)


def run_generic(box: Sandbox, block: Block) -> Run | subprocess.CompletedProcess[str]:
    """The rules every block follows: a shell block's commands succeed (or fail as their `# error:` says);
    a Python block of tests passes under pytest; a plugin module serves under the `kapi start` its first
    line names; any other Python block exits 0."""
    where = f"the {block.lang} block at README.md:{block.line}"
    if block.lang == "python":
        plugin = re.match(r"#\s*(\w+\.py):\s*(kapi start [^(\n]*)", block.text)
        if plugin:
            (box.work / plugin.group(1)).write_text(block.text)
            run = box.run(plugin.group(2).strip(), foreground=True)
            box.check_statuses(run)
            return run
        if re.search(r"^def test_", block.text, re.M):
            result = box.python(block.text, "test_readme_block.py", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                cwd=box.root / "pytest-block")
        else:
            result = box.python(block.text, "readme_block.py")
        assert result.returncode == 0, f"{where}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result
    commands = parse_commands(block.text)
    run = box.run(block.text, shell=block.lang, foreground=is_foreground_start(commands[-1]))
    box.check_statuses(run)
    return run


