"""Measure a real `kapi start` beside its ceilings: start-up, rates, lists, watch, memory, scaling.

Each backend asked for gets its own kapi processes (etcd also its own etcd);
the ceilings are measured in the same run, on the same machine, with the
same client at the same concurrency: a bare uvicorn + Starlette app serving
the bytes of a kapi GET, and (etcd) kapi's etcd client doing raw puts/gets.
Each kapi figure is printed with its ratio to its ceiling.

The load client is a minimal keep-alive HTTP/1.1 client on asyncio streams
(uvloop); httpx tops out near 600 requests/s here, far below the server.
Its CPU share is shown next to each figure; `--client-procs N` spreads each
load over N client processes.

    python scripts/bench.py                    # memory and file backends
    python scripts/bench.py --quick            # small sizes, every figure, in about a minute
    python scripts/bench.py --backend etcd --json
    python scripts/bench.py --scale            # list latency and create rate at 1k, 10k, 100k objects
    python scripts/bench.py --server http://127.0.0.1:6080   # a running kapi (rates only)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kapi_cli.bench.client import loop_name
from kapi_cli.bench.procs import Loader, make_loader
from kapi_cli.bench.report import print_report
from kapi_cli.bench.runner import BackendRun, Options
from kapi_cli.bench.sizes import Sizes

CLIENT_KIND = "kapi_cli.bench.client: asyncio-streams HTTP/1.1 keep-alive (not httpx)"


def parse_args(argv: Sequence[str] | None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["memory", "file", "etcd"],
                        help="backend to start and measure (repeatable; default: memory and file)")
    parser.add_argument("--server", metavar="URL", help="measure a running kapi at http://HOST:PORT instead")
    parser.add_argument("-n", type=int, default=None, help="requests per create/patch/update run (default 2000; "
                        "quick: 200)")
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere: every figure, fast")
    parser.add_argument("--scale", action="store_true", help="also the scaling curve (list p50, create rate)")
    parser.add_argument("--client-procs", type=int, default=1, metavar="N",
                        help="spread each load over N client processes (default 1: this process)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    parser.add_argument("--json-out", type=Path, metavar="FILE", help="also write the JSON to FILE")
    args = parser.parse_args(argv)
    if args.server and args.backend:
        parser.error("--server measures the server it names: drop --backend")
    if args.client_procs < 1:
        parser.error("--client-procs must be at least 1")
    return args


def sizes_for(args: argparse.Namespace) -> Sizes:
    return Sizes.quick(args.n) if args.quick else Sizes.full(args.n or 2000)


def run_backend(run: BackendRun, progress: Progress) -> None:
    steps = run.steps()
    task = progress.add_task(run.backend, total=len(steps))
    try:
        for label, step in steps:
            progress.update(task, description=f"[bold]{run.backend}[/bold]: {label}")
            step()
            progress.advance(task)
        progress.update(task, description=f"[bold]{run.backend}[/bold]: done")
    finally:
        run.close()


def measure(args: argparse.Namespace, loader: Loader, stderr: Console) -> dict[str, Any]:
    options = Options(sizes_for(args), args.scale, args.server)
    backends = ["server"] if args.server else (args.backend or ["memory", "file"])
    load_start = os.getloadavg()
    started = time.perf_counter()
    out: dict[str, Any] = {}
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=False) as progress:
        for backend in backends:
            run = BackendRun(backend, options, loader)
            run_backend(run, progress)
            out[backend] = run.report.to_json()
    return {
        "client": {"kind": CLIENT_KIND, "loop": loop_name(), "procs": loader.procs},
        "machine": {"cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "sizes": options.sizes.__dict__ | {"quick": args.quick},
        "seconds": time.perf_counter() - started,
        "backends": out,
    }


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    stderr = Console(stderr=True)
    loader = make_loader(args.client_procs)
    try:
        report = measure(args, loader, stderr)
    finally:
        loader.close()
    text = json.dumps(report, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=200)  # a pipe or a file: no wrapping of the rows
        print_report(report, out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
