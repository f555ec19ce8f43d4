"""`/kapi/simulation/clock`: read the simulated clock, or advance it (`POST {"advance": "90s"}`).

The testing API and out-of-process tests (kubectl e2e) move a manual clock
through here, so a CronJob fires or a grace period ends without waiting.
As any non-resource path it is authorized (verb get or create on the URL).
"""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.duration import parse_duration
from kapi.endpoints import negotiation as neg
from kapi.endpoints.context import ApiContext

CLOCK_PATH = "/kapi/simulation/clock"


def _advance_by(request: Request, body: bytes) -> float:
    raw: Any = request.query_params.get("advance")
    if raw is None and body.strip():
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise errors.BadRequest("the body must be a JSON object such as {\"advance\": \"90s\"}") from None
        raw = decoded.get("advance") if isinstance(decoded, dict) else None
    if raw is None:
        raise errors.BadRequest("say how far to advance the clock: {\"advance\": \"90s\"} or ?advance=90s")
    try:
        seconds = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else parse_duration(str(raw))
    except ValueError:
        raise errors.BadRequest(f"advance: invalid duration {raw!r}") from None
    if seconds < 0:
        raise errors.BadRequest("advance: the clock only moves forward")
    return seconds


async def handle_clock(request: Request, ctx: ApiContext) -> Response:
    simulation = ctx.simulation
    if simulation is None:
        raise errors.NotFound("the simulation is off: start kapi with --simulate")
    if request.method == "GET":
        answer = simulation.describe()
    elif request.method == "POST":
        answer = simulation.advance(_advance_by(request, await request.body()))
    else:
        raise errors.method_not_allowed()
    return Response(orjson.dumps(answer), media_type=neg.JSON)
