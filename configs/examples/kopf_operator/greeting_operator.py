"""A small kopf operator: every new Greeting gets `status.message` and a label.

Run it against any cluster (or a `kapi start`) with
`kopf run --standalone -A configs/examples/kopf_operator/greeting_operator.py`;
its test, `test_greeting_operator.py`, runs it against kapi's pytest fixtures.
"""
from __future__ import annotations

from typing import Any

import kopf

GROUP, VERSION, PLURAL = "examples.kapi.dev", "v1", "greetings"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # keep the example about the handler, not about Events
    settings.watching.server_timeout = 60


@kopf.on.create(GROUP, VERSION, PLURAL)
def greet(spec: kopf.Spec, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    message = f"Hello, {spec['name']}!"
    patch.status["message"] = message
    patch.metadata.setdefault("labels", {})["examples.kapi.dev/greeted"] = "true"
    logger.info(message)
