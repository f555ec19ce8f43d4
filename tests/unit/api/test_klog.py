"""klog's text lines and kube's JSON lines: durations as Go prints them, values, headers, the formatter."""
from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from kapi.api.klog import (KV_ATTR, V_ATTR, KlogFormatter, go_duration, json_line, severity_of, short_caller,
                             text_line, text_value)


@pytest.mark.parametrize("seconds, expected", [
    (0, "0s"), (5e-7, "500ns"), (1.5e-6, "1.5µs"), (0.000546356, "546.356µs"), (0.0123456, "12.3456ms"),
    (0.25, "250ms"), (1.2, "1.2s"), (1.01173321, "1.01173321s"), (59.999, "59.999s"), (61, "1m1s"),
    (90.5, "1m30.5s"), (3600, "1h0m0s"), (3725.25, "1h2m5.25s"), (-0.002, "-2ms"),
])
def test_go_duration_prints_as_go_does(seconds: float, expected: str) -> None:
    assert go_duration(seconds) == expected


@pytest.mark.parametrize("value, expected", [
    ("LIST", '"LIST"'), ('say "hi"', '"say \\"hi\\""'), (200, "200"), (1.5, "1.5"), (True, "true"),
    (False, "false"), (None, "<nil>"), (["a"], '"[\'a\']"'),
])
def test_text_values_as_klog_writes_them(value: object, expected: str) -> None:
    assert text_value(value) == expected


def test_short_caller_is_parent_dir_and_file() -> None:
    assert short_caller("/x/server/endpoints/httplog.py", 94) == "endpoints/httplog.py:94"
    assert short_caller("httplog.py", 3) == "httplog.py:3"


def test_text_line_has_klogs_header_and_quotes_structured_messages() -> None:
    line = text_line("I", 1716458400.123456, 4242, "endpoints/httplog.py:94", "HTTP",
                     {"verb": "LIST", "URI": "/api/v1/pods", "resp": 200})
    assert re.fullmatch(r'I\d{4} \d{2}:\d{2}:\d{2}\.\d{6}    4242 httplog\.py:94\] "HTTP" verb="LIST" '
                        r'URI="/api/v1/pods" resp=200', line), line
    assert ".123456 " in line
    plain = text_line("W", 1716458400.0, 7, "a/b.py:1", "disk almost full")
    assert plain.startswith("W") and plain.endswith("b.py:1] disk almost full")


def test_json_line_has_kubes_keys() -> None:
    out = json.loads(json_line(1716458400.5, "endpoints/httplog.py:94", "HTTP", 3, {"verb": "GET", "resp": 404}))
    assert out == {"ts": 1716458400500.0, "caller": "endpoints/httplog.py:94", "msg": "HTTP", "v": 3,
                   "verb": "GET", "resp": 404}
    error = json.loads(json_line(1.0, "c.py:1", "failed", None, None, err="boom"))
    assert "v" not in error and error["err"] == "boom"
    # a key/value cannot overwrite the line's own keys
    assert json.loads(json_line(1.0, "c.py:1", "m", 0, {"msg": "x"}))["msg"] == "m"


def test_severity_letters() -> None:
    assert [severity_of(level) for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR,
                                             logging.CRITICAL)] == ["I", "I", "W", "E", "E"]


def _record(level: int, msg: str, args: tuple[object, ...] = (), exc: bool = False,
            extra: dict[str, object] | None = None) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("disk on fire")
        except RuntimeError:
            info = sys.exc_info()
    record = logging.LogRecord("kapi.test", level, "/src/server/storage/file.py", 12, msg, args, info)
    record.__dict__.update(extra or {})
    return record


def test_formatter_text_lines() -> None:
    fmt = KlogFormatter("text")
    structured = fmt.format(_record(logging.INFO, "HTTP", extra={V_ATTR: 3, KV_ATTR: {"verb": "GET", "resp": 200}}))
    assert structured.endswith('file.py:12] "HTTP" verb="GET" resp=200')
    plain = fmt.format(_record(logging.WARNING, "Started %s [%d]", ("server", 7)))
    assert plain.startswith("W") and plain.endswith("file.py:12] Started server [7]")
    failed = fmt.format(_record(logging.ERROR, "internal error", exc=True))
    first, *trace = failed.splitlines()
    assert first.startswith("E") and first.endswith("] internal error")
    assert trace[0].startswith("Traceback") and trace[-1] == "RuntimeError: disk on fire"


def test_formatter_json_lines() -> None:
    fmt = KlogFormatter("json")
    out = json.loads(fmt.format(_record(logging.INFO, "HTTP", extra={V_ATTR: 2, KV_ATTR: {"latency": "1.2s"}})))
    assert (out["msg"], out["v"], out["latency"], out["caller"]) == ("HTTP", 2, "1.2s", "storage/file.py:12")
    assert json.loads(fmt.format(_record(logging.INFO, "plain %d", (5,))))["v"] == 0
    assert json.loads(fmt.format(_record(logging.DEBUG, "chatty")))["v"] == 4
    failed = json.loads(fmt.format(_record(logging.ERROR, "internal error", exc=True)))
    assert "v" not in failed and failed["err"] == "disk on fire" and "Traceback" in failed["stacktrace"]


def test_formatter_refuses_unknown_formats() -> None:
    with pytest.raises(ValueError, match="text or json"):
        KlogFormatter("xml")
