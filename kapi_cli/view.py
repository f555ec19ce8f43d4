"""What `kapi list` and `kapi status` show about an instance: one record, as a rich table or JSON."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from rich import box
from rich.table import Table
from rich.text import Text

from kapi_cli.probe import Probe, probe
from kapi_cli.state import InstanceState
from kapi.api.humanize import human_duration

RUNNING, STALE, NOT_RUNNING = "running", "stale", "not running"


def describe(state: InstanceState, status: str, result: Optional[Probe]) -> dict[str, Any]:
    """A JSON-able record of one instance. Holds no secret: paths only, never a token."""
    started = datetime.fromtimestamp(state.started_at, timezone.utc) if state.started_at else None
    uptime = max(0.0, time.time() - state.started_at) if status == RUNNING and state.started_at else None
    return {
        "name": state.name,
        "status": status,
        "ready": bool(result and result.ready),
        "pid": state.pid if state.pid > 0 else None,
        "urls": list(state.urls),
        "backend": state.backend,
        "file_rootpath": state.file_rootpath,
        "kubeconfig": state.kubeconfig,
        "log_file": state.log_file,
        "started_at": started.isoformat().replace("+00:00", "Z") if started else None,
        "uptime_seconds": round(uptime, 3) if uptime is not None else None,
        "objects": result.objects if result else None,
        "storage": result.storage if result else None,
        "kapi_version": state.kapi_version or None,
    }


def probe_all(states: Iterable[InstanceState]) -> list[Probe]:
    """Probe running instances concurrently (each probe is bounded by short timeouts)."""
    states = list(states)
    if not states:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(states))) as pool:
        return list(pool.map(probe, states))


def _objects_cell(objects: Optional[dict[str, int]]) -> str:
    """The total: the count per resource would not fit 80 columns beside the URLs (`kapi status NAME` and
    `-o json` show it)."""
    return "-" if objects is None else str(sum(objects.values()))


def _status_cell(record: dict[str, Any]) -> Text:
    if record["status"] == RUNNING:
        return Text("ready", "green") if record["ready"] else Text("not ready", "yellow")
    if record["status"] == STALE:
        return Text("stale (cleaned)", "red")
    return Text("not running", "red")


def table(records: list[dict[str, Any]], title: Optional[str] = None) -> Table:
    """Instances, one row each, fitting 80 columns: only the name and the status wrap (the name may fold);
    numbers, URLs and the backend are never wrapped or cut. Values are Text, never markup (an IPv6 URL's
    `[...]` would otherwise be read as a style)."""
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              padding=(0, 1, 0, 0))
    t.add_column("name", overflow="fold", min_width=4)
    t.add_column("pid", no_wrap=True, justify="right")
    t.add_column("urls", no_wrap=True)
    t.add_column("backend", no_wrap=True)
    t.add_column("uptime", no_wrap=True, justify="right")
    t.add_column("status", overflow="fold", min_width=9)  # "not ready", "stale" / "(cleaned)"
    t.add_column("objects", no_wrap=True, justify="right")
    for r in records:
        uptime = human_duration(r["uptime_seconds"]) if r["uptime_seconds"] is not None else "-"
        t.add_row(Text(r["name"]), str(r["pid"] or "-"), Text("\n".join(r["urls"]) or "-"), Text(r["backend"] or "-"),
                  uptime, _status_cell(r), _objects_cell(r["objects"]))
    return t
