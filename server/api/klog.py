"""Log lines as kube's components write them: klog's text header, or the JSON of `--logging-format=json`.

Kubernetes operators already grep and ship kube-apiserver's logs; kapi's
lines have the same shape, so the same tools read them:

    I0523 10:00:00.123456   12345 httplog.py:80] "HTTP" verb="LIST" URI="/api/v1/pods" latency="1.2ms" resp=200
    {"ts":1716458400123.456,"caller":"endpoints/httplog.py:80","msg":"HTTP","v":3,"verb":"LIST",...}

A record says its klog verbosity (`V_ATTR`, what `-v` must reach for it to
be written) and its structured key/values (`KV_ATTR`) through `extra=`; a
plain record (uvicorn's, a `log.warning("...")`) is an unstructured klog
line at verbosity 0 (4 for DEBUG records). Durations are written as Go
prints a `time.Duration` (`1.5ms`, `2m3.5s`), as kube's latency values are.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

import orjson

V_ATTR = "klog_v"
KV_ATTR = "klog_kv"
FORMATS = ("text", "json")
DEBUG_V = 4  # DEBUG records are klog's chatty levels: written from -v=4 on

_UNITS = ((1_000, "ns", 1), (1_000_000, "µs", 1_000), (1_000_000_000, "ms", 1_000_000))


def go_duration(seconds: float) -> str:
    """`seconds` as Go's `time.Duration.String()`: 0s, 850ns, 1.5µs, 12.345ms, 1.2s, 1m30.5s, 1h0m0s."""
    ns = round(seconds * 1e9)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    for limit, unit, size in _UNITS:
        if ns < limit:
            return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return sign + out + _fraction(rest, 1_000_000_000) + "s"


def _fraction(n: int, size: int) -> str:
    whole, part = divmod(n, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0")


def text_value(value: Any) -> str:
    """A value as klog's text format writes it: strings quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "<nil>"
    text = value if isinstance(value, str) else str(value)
    return orjson.dumps(text).decode()


def short_caller(pathname: str, lineno: int) -> str:
    """`dir/file.py:line`, as zap's short caller (`httplog/httplog.go:134`)."""
    head, name = os.path.split(pathname)
    parent = os.path.basename(head)
    return f"{parent}/{name}:{lineno}" if parent else f"{name}:{lineno}"


def text_line(severity: str, when: float, pid: int, caller: str, msg: str,
              kv: Mapping[str, Any] | None = None) -> str:
    """klog's text line: `Lmmdd hh:mm:ss.uuuuuu PID file:line] msg k=v ...`; a structured message
    (with key/values) is quoted, as klog's InfoS writes it."""
    t = time.localtime(when)
    micros = int((when % 1) * 1_000_000)
    head = (f"{severity}{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
            f"{micros:06d} {pid:7d} {caller.rsplit('/', 1)[-1]}] ")
    if kv is None:
        return head + msg
    return head + " ".join([orjson.dumps(msg).decode(), *(f"{k}={text_value(v)}" for k, v in kv.items())])


def json_line(when: float, caller: str, msg: str, v: int | None, kv: Mapping[str, Any] | None = None,
              err: str | None = None) -> str:
    """kube's JSON line: ts (milliseconds since the epoch), caller, msg, v (info lines), the key/values,
    and err for an error."""
    out: dict[str, Any] = {"ts": round(when * 1000, 3), "caller": caller, "msg": msg}
    if v is not None:
        out["v"] = v
    if kv:
        for key, value in kv.items():
            out.setdefault(key, value)
    if err is not None:
        out["err"] = err
    return orjson.dumps(out, default=str).decode()


_SEVERITY = ((logging.ERROR, "E"), (logging.WARNING, "W"))


def severity_of(levelno: int) -> str:
    """klog's severity letter: I, W or E (CRITICAL is an error too: klog's F exits the process)."""
    return next((letter for level, letter in _SEVERITY if levelno >= level), "I")


class KlogFormatter(logging.Formatter):
    """A logging.Formatter writing klog's text lines or kube's JSON lines (`fmt`: text or json)."""

    def __init__(self, fmt: str = "text") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown logging format {fmt!r}: use {' or '.join(FORMATS)}")
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        kv: Mapping[str, Any] | None = getattr(record, KV_ATTR, None)
        caller = short_caller(record.pathname, record.lineno)
        trace = self.formatException(record.exc_info) if record.exc_info else ""
        if self.json:
            v = getattr(record, V_ATTR, DEBUG_V if record.levelno <= logging.DEBUG else 0)
            error = record.levelno >= logging.ERROR
            err = (str(record.exc_info[1]) if record.exc_info and record.exc_info[1] is not None else None) \
                if error else None
            merged = {**(kv or {}), "stacktrace": trace} if trace else kv
            return json_line(record.created, caller, msg, None if error else v, merged, err)
        line = text_line(severity_of(record.levelno), record.created, record.process or 0, caller, msg, kv)
        return f"{line}\n{trace}" if trace else line
