"""The ceiling: a bare Starlette app under uvicorn (httptools, uvloop), as fast as Python's HTTP stack goes.

Every GET answers with the bytes of a kapi GET of a Foo (the file named by
`KAPI_BENCH_GET_BODY`, written by the benchmark), so the ceiling moves the
same payload kapi does; every POST reads its body and answers 201 with a
small JSON body. The same load client at the same concurrency against this
app and against kapi gives kapi's share of what the stack can do. One route,
no middleware: anything more would be cost kapi is not charged for.
"""
from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_GET_BODY = Path(os.environ["KAPI_BENCH_GET_BODY"]).read_bytes() if "KAPI_BENCH_GET_BODY" in os.environ else b"{}"
_POST_BODY = b'{"kind":"Status","status":"Success","code":201}'


async def endpoint(request: Request) -> Response:
    if request.method == "POST":
        await request.body()
        return Response(_POST_BODY, status_code=201, media_type="application/json")
    return Response(_GET_BODY, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
