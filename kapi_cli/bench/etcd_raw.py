"""The etcd backend's ceiling: kapi's own etcd client doing plain puts, gets and a range.

Why kapi's client and not etcd's benchmark tool: the ratio should show what
kapi adds on top of the same gRPC client in the same language, not what
Python costs against Go. kapi writes through a Txn (create only if absent),
one round trip like a put, so put is a fair ceiling for creates.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from kapi_cli.bench.client import Result
from kapi_cli.bench.plans import foo_body
from kapi_cli.bench.servers import CpuMeter

PREFIX = b"/bench-raw/"


async def _load(name: str, concurrency: int, total: int, op: Callable[[int], Awaitable[Any]],
                etcd_pid: int | None) -> Result:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t)

    cpu0, t0 = time.process_time(), time.perf_counter()
    with CpuMeter(etcd_pid).measure() as etcd:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    return Result(name, total, seconds, latencies, (time.process_time() - cpu0) / seconds, etcd_cpu=etcd.share)


async def raw_etcd(endpoints: str, n: int, etcd_pid: int | None = None) -> dict[str, Result]:
    """Puts (sequential and 16 at a time), gets 16 at a time, and a range over n keys."""
    from kapi.storage.etcd_client import EtcdClient, parse_endpoints

    client = EtcdClient(parse_endpoints([endpoints]))
    value = foo_body("raw")
    try:
        return {
            "ceiling_etcd_put_seq": await _load("raw etcd put, sequential", 1, n,
                                                lambda i: client.put(PREFIX + b"s%d" % i, value), etcd_pid),
            "ceiling_etcd_put_c16": await _load("raw etcd put, 16 clients", 16, n,
                                                lambda i: client.put(PREFIX + b"c%d" % i, value), etcd_pid),
            "ceiling_etcd_get_c16": await _load("raw etcd get, 16 clients", 16, 4 * n,
                                                lambda i: client.range(PREFIX + b"s%d" % (i % n)), etcd_pid),
            "ceiling_etcd_range": await _load(f"raw etcd range {n} keys", 1, 20,
                                              lambda i: client.range(PREFIX + b"s", PREFIX + b"t"), etcd_pid),
        }
    finally:
        await client.close()
