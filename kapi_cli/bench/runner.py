"""One backend's run as a list of named steps, and the processes those steps start.

Why steps: the progress display shows which one is running and how many are
left, and `close` stops every process a step started even when a later
step fails, so a failed run leaves no kapi, uvicorn or etcd behind.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from kapi_cli.bench.rbac import ADMIN_TOKEN, write_token_file
from kapi_cli.bench import plans as p
from kapi_cli.bench import growth, suites
from kapi_cli.bench.client import Target, run
from kapi_cli.bench.figures import BackendReport
from kapi_cli.bench.procs import Loader
from kapi_cli.bench.servers import BareServer, KapiServer
from kapi_cli.bench.sizes import Sizes, human
from kapi_cli.bench.suites import Bench

Step = tuple[str, Callable[[], None]]
RATE_ROLES = ["", "-{small}", "-{large}", "-del"]


@dataclass(frozen=True)
class Options:
    sizes: Sizes
    scale: bool
    server_url: str | None = None


def parse_server(url: str) -> Target:
    """`--server http://host:port`: only plain HTTP (the load client speaks TLS only to kapi's own CA)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.port:
        raise SystemExit(f"--server wants http://HOST:PORT, not {url!r}")
    return Target(parts.hostname or "127.0.0.1", parts.port)


class BackendRun:
    """The steps measuring one backend (or one `--server`), and clean-up of what they started."""

    def __init__(self, backend: str, options: Options, loader: Loader) -> None:
        self.backend, self.options, self.loader = backend, options, loader
        self.sizes = options.sizes
        self.report = BackendReport(backend)
        self.root = Path(tempfile.mkdtemp(prefix=f"kapi-bench-{backend}-"))
        self._stoppers: list[Callable[[], None]] = []
        self.etcd_endpoints: str | None = None
        self.etcd_pid: int | None = None
        self.bench: Bench | None = None
        self.main_server: KapiServer | None = None

    # -- processes ---------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        from kapi_cli.etcd_local import LocalEtcd

        etcd = LocalEtcd.create(self.root / "etcd").start()
        self._stoppers.append(etcd.stop)
        self.etcd_endpoints = etcd.endpoints
        proc = etcd.members[0].proc
        self.etcd_pid = proc.pid if proc else None

    def _kapi(self, name: str) -> KapiServer:
        """A new kapi on its own root (and, on etcd, its own key prefix, so it starts empty)."""
        extra = ["--etcd-servers", self.etcd_endpoints or "", "--etcd-prefix", f"/{name}"] \
            if self.backend == "etcd" else []
        tokens = write_token_file(self.root / f"{name}-tokens.csv")  # the authorization row's users
        server = KapiServer(self.backend, self.root / name, [*extra, "--token-auth-file", str(tokens)])
        self._stoppers.append(server.stop)
        return server

    def _kapi_with(self, name: str, args: list[str]) -> KapiServer:
        """`_kapi` with more `kapi start` flags."""
        server = self._kapi(name)
        server.extra_args += args
        return server

    def _bench_on(self, server: KapiServer) -> Bench:
        """Start `server` and measure through it."""
        server.start()
        return Bench(server.http, self.loader, self.report, self.sizes, server.pid, self.etcd_pid)

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            stop()
        self._stoppers.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- steps -------------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        if self.options.server_url:
            return self._target_steps(parse_server(self.options.server_url))
        out: list[Step] = []
        if self.backend == "etcd":
            out += [("start etcd", self._start_etcd), ("raw etcd ceiling", self._raw_etcd)]
        out += [(f"start-up ×{self.sizes.startups}", self._startups), ("start kapi", self._start_main)]
        out += self._rate_steps()
        out += [("authorization (RBAC)", lambda: suites.authorization(self._main()))]
        out += [("HTTPS gets", self._tls), ("stop kapi", self._stop_main),
                ("metrics and audit cost (3 fresh kapis)", self._observability),
                (f"memory up to {self.sizes.memory[-1]} objects (fresh kapi)", self._memory)]
        if self.options.scale:
            out.append((f"scale to {self.sizes.scale[-1]} objects (fresh kapi)", self._scale))
        out.append((f"simulated rollouts of {', '.join(map(str, self.sizes.rollouts))} replicas", self._rollouts))
        out.append(("100 logical clusters (fresh kapi)", self._clusters))
        return out

    def _target_steps(self, target: Target) -> list[Step]:
        self.bench = Bench(target, self.loader, self.report, self.sizes, suffix=f"-{secrets.token_hex(3)}")
        self.report.notes.append(f"--server {self.options.server_url}: start-up, memory and HTTPS not measured; "
                                 f"server CPU unknown; objects left in namespaces ending {self.bench.suffix}")
        out: list[Step] = [("namespaces", self._namespaces), *self._rate_steps()]
        if self.options.scale:
            out.append(("scale", lambda: growth.scale(self._main())))
        return out

    def _rate_steps(self) -> list[Step]:
        b = self._main
        return [
            ("creates", lambda: suites.creates(b())),
            ("get", lambda: suites.gets(b())),
            ("bare uvicorn ceiling", self._bare),
            (f"fill {self.sizes.list_small} + {self.sizes.list_large} objects", lambda: suites.fill_lists(b())),
            ("lists", lambda: suites.lists(b())),
            ("paged list", lambda: suites.paged_list(b())),
            ("patch and update", lambda: suites.patch_and_update(b())),
            ("watch", lambda: suites.watch(b())),
            ("schema cost", lambda: suites.schema_cost(b())),
            ("typed hub conversion", lambda: suites.hub_conversion(b())),
            ("built-in kinds", lambda: suites.builtin_kinds(b())),
            (f"delete-collection of {self.sizes.delete_n}", lambda: suites.delete_collection(b())),
        ]

    def _main(self) -> Bench:
        assert self.bench is not None, "the kapi under test is not running"
        return self.bench

    def _namespaces(self) -> None:
        roles = [r.format(small=human(self.sizes.list_small), large=human(self.sizes.list_large)) for r in RATE_ROLES]
        suites.create_namespaces(self._main(), roles)

    def _raw_etcd(self) -> None:
        from kapi_cli.bench.etcd_raw import raw_etcd

        assert self.etcd_endpoints is not None
        for key, result in run(raw_etcd(self.etcd_endpoints, self.sizes.n, self.etcd_pid)).items():
            self.report.add(key, result, "ceiling")

    def _startups(self) -> None:
        for i in range(self.sizes.startups):
            server = self._kapi(f"start{i}")
            self.report.startup_s.append(server.start())
            server.stop()

    def _start_main(self) -> None:
        self.main_server = self._kapi("main")
        self.bench = self._bench_on(self.main_server)
        self._namespaces()

    def _stop_main(self) -> None:
        if self.main_server is not None:
            self.main_server.stop()
        self.bench = self.main_server = None

    def _tls(self) -> None:
        server = self.main_server
        assert server is not None, "the kapi under test is not running"
        suites.tls_gets(self._main(), server.https(False), server.https(True))

    def _bare(self) -> None:
        """GET and POST at 16 clients against bare uvicorn + Starlette serving kapi's own Foo bytes."""
        bench = self._main()
        bare = BareServer(self.root / "bare-get-body.json")
        self._stoppers.append(bare.stop)
        bare.start(suites.foo_bytes(bench))
        try:
            # Long enough to read CPU shares off /proc (10 ms ticks): the ceiling is several times kapi's rate.
            n = max(4 * self.sizes.n, self.sizes.ceiling_ops)
            bench.load("ceiling_bare_get_c16", "bare uvicorn + Starlette GET, 16 clients", 16, n,
                       p.same_plan("GET", "/bare"), bare.http, "ceiling", bare.pid)
            bench.load("ceiling_bare_post_c16", "bare uvicorn + Starlette POST, 16 clients", 16, n,
                       p.create_plan("/bare", "b"), bare.http, "ceiling", bare.pid)
        finally:
            bare.stop()

    def _memory(self) -> None:
        server = self._kapi("mem")
        growth.memory(self._bench_on(server))
        server.stop()

    def _rollouts(self) -> None:
        from kapi_cli.bench.simulation import rollouts

        self.report.rollouts = rollouts(self._kapi_with, self.sizes.rollouts)

    def _observability(self) -> None:
        from kapi_cli.bench.observability import observability_cost

        self.report.notes.append(observability_cost(self._kapi_with, self._bench_on, self.root))

    def _clusters(self) -> None:
        from kapi_cli.bench.clusters import many_clusters

        server = self._kapi("clusters")
        try:
            self.report.clusters = many_clusters(server, replace(server.http, token=ADMIN_TOKEN))
        finally:
            server.stop()

    def _scale(self) -> None:
        server = self._kapi("scale")
        growth.scale(self._bench_on(server))
        server.stop()
