"""CEL validation rules (`x-kubernetes-validations`) of custom resources, worded like kube-apiserver.

Follows k8s.io/apiextensions-apiserver `pkg/apiserver/schema/cel` (`validation.go`, `compilation.go`,
`values.go`) and the CRD checks of `apis/apiextensions/validation`. Rules are evaluated with
cel-expr-python, Google's C++ CEL runtime: it type-checks (compile errors read like cel-go's),
ships the strings and optional-types extensions kube enables, takes Python functions for kube's
own `Lists`, `Regex` and `Sets` libraries, and caps every evaluation at about 10,000
comprehension iterations.

- A rule attaches to any schema node; `self` is the node's value (never `null`: kube skips nulls),
  `oldSelf` the old value on update. A rule that references `oldSelf` is a transition rule and
  runs only where an old value correlates (object properties, map values, items of
  `x-kubernetes-list-type: map` lists matched by key), unless `optionalOldSelf` makes `oldSelf`
  an optional. Values are typed by the schema: `number` is a double, `date`/`date-time` a
  timestamp, `duration` a duration, `byte` bytes; property names are escaped (`__dash__`, ...);
  at a resource root only apiVersion, kind, metadata.name and metadata.generateName are visible.
- A failing rule is `field.Invalid(path, <schema type>, message)` (`reason` may make it Forbidden,
  Required or Duplicate); the message is the evaluated `messageExpression`, else `message`, else
  `failed rule: <rule>`; `fieldPath` is appended to the node path. A root rule's path is `<nil>`.
- On update, a non-transition rule failing on a value equal to its old value is ratcheted into a
  warning (kube's CRDValidationRatcheting).
- Cost bound: kube rejects expensive rules by estimated cost and cuts evaluation at a cost limit;
  here the runtime's iteration cap cuts loops, and a rule that could blow up with the data
  (comprehensions, `replace`, `find`, set functions, over a value bigger than a few hundred bytes)
  runs in a worker process that is killed after `RULE_TIME_BUDGET`. Either way the error is
  kube's "call cost exceeds limit" and no further rules run; past `TOTAL_TIME_BUDGET` per object,
  kube's "running out of cost budget".
"""
from __future__ import annotations

import atexit
import base64
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import orjson
from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_optional, ext_strings  # type: ignore[import-untyped]

from server.api.errors import Cause, field_duplicate, field_forbidden, field_not_supported, field_value_invalid, go_quote

Schema = dict[str, Any]

RULE_TIME_BUDGET = 0.1  # seconds; kube's PerCallLimit "gives roughly 0.1 second"
TOTAL_TIME_BUDGET = 1.0  # seconds per object; kube's RuntimeCELCostBudget "roughly 1 second"
SANDBOX_MIN_BYTES = 256  # risky rules over values at least this big run in the worker process
MAX_MESSAGE_BYTES = 5 * 1024
REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")
BLOCKING = ("FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany",
            "FieldValueTypeInvalid")
_T = cel.Type
_KINDS = {"dyn": _T.DYN, "string": _T.STRING, "bool": _T.BOOL, "list": _T.List(_T.DYN),
          "map": _T.Map(_T.STRING, _T.DYN), "timestamp": _T.TIMESTAMP, "duration": _T.DURATION, "bytes": _T.BYTES}
_HAS_OLD, _OLD = "kapi__hasOldSelf", "kapi__oldSelf"
_ROOT_META = ("apiVersion", "kind", "metadata")
_RESERVED = frozenset("true false null in as break const continue else for function if import let loop package "
                      "namespace return var void while".split())
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_ESCAPE_RX = re.compile(r"__|[-./]|[^a-zA-Z0-9_]")
_STRINGS_RX = re.compile(r"""[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""")
_RISKY_RX = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter|replace|find|findAll)\s*\(|\bsets\s*\.")
_COST = "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to " \
        "call cost exceeds limit for rule: "
_OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"
_BLOCKED = ("some validation rules were not checked because the object was invalid; "
            "correct the existing errors to complete validation")


# -- public API --------------------------------------------------------------------------------

def has_rules(schema: Schema | None) -> bool:
    """Whether any node of `schema` carries `x-kubernetes-validations` (cached per schema object)."""
    if not isinstance(schema, dict):
        return False
    hit = _has_rules_cache.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_has_rules_cache) > 1024:
            _has_rules_cache.clear()
        hit = _has_rules_cache[id(schema)] = (schema, _any_rules(schema))
    return hit[1]


def validate_rules(obj: Any, old_obj: Any, schema: Schema | None,
                   warnings: list[str] | None = None) -> list[Cause]:
    """Field errors of every failing rule of `schema` on `obj` (`old_obj` on update, else None).

    Ratcheted errors (a value unchanged since `old_obj`) go to `warnings` as `path: message`.
    """
    if not has_rules(schema) or obj is None:
        return []
    walk = _Walk([], warnings, time.monotonic() + TOTAL_TIME_BUDGET)
    _node(walk, obj, old_obj, schema, "", True, (obj, old_obj) if old_obj is not None else None)
    return walk.out


def validate_rules_after(prior: list[Cause], obj: Any, old_obj: Any, schema: Schema | None,
                         warnings: list[str] | None = None) -> list[Cause]:
    """`validate_rules` unless `prior` (schema and metadata errors) already make rules meaningless.

    kube's `hasBlockingErr`: a type, required, enum, length or count error skips every rule and
    says so in one `<nil>` error instead.
    """
    if not has_rules(schema):
        return []
    if any(c.reason in BLOCKING for c in prior):
        return [Cause("FieldValueInvalid", f'Invalid value: "null": {_BLOCKED}', "<nil>")]
    return validate_rules(obj, old_obj, schema, warnings)


def rule_schema_errors(schema: Schema | None, path: str = "") -> list[Cause]:
    """What is wrong with the rules of a CRD schema, as kube's CRD validation says it.

    Paths are relative to `openAPIV3Schema` (`properties[spec].x-kubernetes-validations[0].rule`),
    prefixed with `path`.
    """
    found: list[Cause] = []
    cel_found: list[Cause] = []
    if isinstance(schema, dict):
        _schema_errors(schema, path, None, True, found, cel_found)
    return found + cel_found


def compile_rules(schema: Schema | None) -> list[str]:
    """Every reason the rules of `schema` cannot be used, as `path: message` lines."""
    return [f"{c.field}: {c.message}" for c in rule_schema_errors(schema)]


# -- values ------------------------------------------------------------------------------------

def _escape(name: str) -> str | None:
    """A property name as a CEL identifier (kube's `Escape`), or None if it cannot be one."""
    if not name or "0" <= name[0] <= "9":
        return None
    if name in _RESERVED:
        return f"__{name}__"
    bad = False

    def sub(m: re.Match[str]) -> str:
        nonlocal bad
        if m.group() in _ESCAPES:
            return _ESCAPES[m.group()]
        bad = True
        return ""
    escaped = _ESCAPE_RX.sub(sub, name)
    return None if bad else escaped


_DURATION_RX = re.compile(r"([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h|d|w)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _formatted(value: str, fmt: Any) -> Any:
    """kube's typed strings: duration, date, date-time and byte formats; anything unparsable stays a string."""
    try:
        if fmt == "date-time":
            stamp = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        if fmt == "date":
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        if fmt == "byte":
            return base64.b64decode(value, validate=True)
        if fmt == "duration":
            sign, body = (-1, value[1:]) if value.startswith("-") else (1, value.lstrip("+"))
            parts = _DURATION_RX.findall(body)
            if parts and "".join(n + u for n, u in parts) == body.replace(" ", ""):
                return timedelta(seconds=sign * sum(float(n) * _UNITS[u] for n, u in parts))
    except (ValueError, TypeError):
        pass
    return value


def _to_cel(value: Any, schema: Any, root: bool = False) -> Any:
    """A JSON value as kube's `UnstructuredToVal` presents it to CEL."""
    if value is None or not isinstance(schema, dict):
        return value
    if schema.get("x-kubernetes-int-or-string"):
        return int(value) if isinstance(value, float) and value.is_integer() else value
    kind = schema.get("type")
    if isinstance(value, dict):
        props = schema.get("properties")
        resource = root or bool(schema.get("x-kubernetes-embedded-resource"))
        if isinstance(props, dict) or resource:
            out = {}
            for key, sub in value.items():
                name = _escape(key)
                if resource and key in _ROOT_META:
                    if key == "metadata":
                        sub = {k: v for k, v in sub.items() if k in ("name", "generateName")} \
                            if isinstance(sub, dict) else sub
                    out[key] = sub
                elif name is not None and isinstance(props, dict) and key in props:
                    out[name] = _to_cel(sub, props[key])
            return out
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            return {k: _to_cel(v, additional) for k, v in value.items()}
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [_to_cel(v, items) for v in value] if isinstance(items, dict) else value
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "string" and isinstance(value, str) and schema.get("format"):
        return _formatted(value, schema["format"])
    return value


def _kind_of(schema: Schema) -> str:
    """How `self` is declared: typed where cel-cpp's checker agrees with kube's, dyn for numbers
    (kube compares int with double; cel-cpp's checker would not) and int-or-string."""
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string") or not isinstance(kind, str):
        return "dyn"
    if kind == "string":
        fmt = schema.get("format")
        return {"duration": "duration", "date": "timestamp", "date-time": "timestamp", "byte": "bytes"}.get(
            fmt if isinstance(fmt, str) else "", "string")
    return {"boolean": "bool", "array": "list", "object": "map"}.get(kind, "dyn")


# -- kube's CEL libraries (Lists, Regex, Sets) ---------------------------------------------------

def _sorted(items: list[Any]) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _extreme(pick: Callable[[list[Any]], Any], name: str) -> Callable[[list[Any]], Any]:
    def call(items: list[Any]) -> Any:
        if not items:
            raise ValueError(f"{name} called on empty list")
        return pick(items)
    return call


def _index(items: list[Any], value: Any, last: bool = False) -> int:
    found = [i for i, item in enumerate(items) if type(item) is type(value) and item == value]
    return (found[-1] if last else found[0]) if found else -1


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


def _library() -> Any:
    dyn, lst, string = _T.DYN, _T.List(_T.DYN), _T.STRING

    def member(name: str, overload: str, ret: Any, params: list[Any], impl: Callable[..., Any]) -> Any:
        return cel.FunctionDecl(name, [cel.Overload(overload, ret, params, is_member=True, impl=impl)])

    def glob(name: str, impl: Callable[..., Any]) -> Any:
        return cel.FunctionDecl(name, [cel.Overload(name.replace(".", "_"), _T.BOOL, [lst, lst], impl=impl)])
    return cel.CelExtension("kapi_kubernetes", [
        member("isSorted", "list_is_sorted", _T.BOOL, [lst], _sorted),
        member("sum", "list_sum", dyn, [lst], lambda items: sum(items)),
        member("min", "list_min", dyn, [lst], _extreme(min, "min")),
        member("max", "list_max", dyn, [lst], _extreme(max, "max")),
        member("indexOf", "list_index_of", _T.INT, [lst, dyn], _index),
        member("lastIndexOf", "list_last_index_of", _T.INT, [lst, dyn], lambda i, v: _index(i, v, True)),
        member("find", "string_find", string, [string, string],
               lambda s, p: next(iter(_find_all(s, p, 1)), "")),
        cel.FunctionDecl("findAll", [
            cel.Overload("string_find_all", _T.List(string), [string, string], is_member=True, impl=_find_all),
            cel.Overload("string_find_all_n", _T.List(string), [string, string, _T.INT], is_member=True,
                         impl=_find_all)]),
        glob("sets.contains", lambda a, b: all(x in a for x in b)),
        glob("sets.equivalent", lambda a, b: all(x in a for x in b) and all(x in b for x in a)),
        glob("sets.intersects", lambda a, b: any(x in a for x in b)),
    ])


_envs: dict[tuple[str, str], Any] = {}


def _env(kind: str, old: str) -> Any:
    """The environment for `self` of `kind`; `old` is "none", "typed" or "optional" (oldSelf an optional)."""
    env = _envs.get((kind, old))
    if env is None:
        declared = _KINDS[kind]
        variables = {"self": declared}
        if old != "none":
            variables["oldSelf"] = declared if old == "typed" else _T.DYN
            variables.update({_HAS_OLD: _T.BOOL, _OLD: declared})
        env = _envs[(kind, old)] = cel.NewEnv(
            variables=variables, extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional(), _library()])
    return env


# -- compilation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Program:
    expr: Any = None
    error: str = ""
    uses_old: bool = False
    optional: bool = False
    message: Any = None
    message_error: str = ""
    risky: bool = False


_programs: dict[tuple[Any, ...], _Program] = {}


def _issues(exc: Exception) -> str:
    """cel-cpp's status text as cel-go's `issues.String()`."""
    text = re.sub(r"^[A-Z_]+: ", "", str(exc))
    return re.sub(r" \[[A-Z_]+\]$", "", text)


def _compile(env: Any, source: str) -> tuple[Any, str]:
    try:
        return env.compile(source), ""
    except RuntimeError as exc:
        return None, _issues(exc)


def _program(rule: dict[str, Any], kind: str) -> _Program:
    source, message = rule.get("rule"), rule.get("messageExpression")
    optional = rule.get("optionalOldSelf") is True
    key = (kind, source, message, optional)
    program = _programs.get(key)
    if program is not None:
        return program
    if len(_programs) > 4096:
        _programs.clear()
    src = source if isinstance(source, str) else ""
    expr, issues = _compile(_env(kind, "optional" if optional else "typed"), src)
    error = "" if expr is not None else f"compilation failed: {issues}"
    if expr is not None and expr.return_type() not in (_T.BOOL, _T.DYN):
        expr, error = None, "cel expression must evaluate to a bool"
    uses_old = expr is not None and _compile(_env(kind, "none"), src)[0] is None
    if expr is not None and optional and uses_old:
        expr, _ = _compile(_env(kind, "optional"), f"[{_HAS_OLD} ? optional.of({_OLD}) : optional.none()]"
                                                   f".all(oldSelf, ({src}))")
    msg_expr, msg_error = None, ""
    if isinstance(message, str) and message.strip():
        msg_expr, issues = _compile(_env(kind, "typed"), message)
        msg_error = f"messageExpression compilation failed: {issues}" if msg_expr is None else ""
        if msg_expr is not None and msg_expr.return_type() not in (_T.STRING, _T.DYN):
            msg_expr, msg_error = None, "messageExpression must evaluate to a string"
    code = _STRINGS_RX.sub("''", src + "\n" + (message if isinstance(message, str) else ""))
    program = _programs[key] = _Program(expr, error, uses_old, optional, msg_expr, msg_error,
                                        bool(_RISKY_RX.search(code)))
    return program


# -- evaluation ----------------------------------------------------------------------------------

_GO_ERRORS = ((re.compile(r"^No matching overloads? found.*", re.S), "no such overload"),
              (re.compile(r'^Key not found in map : "?(.*?)"?$', re.S), r"no such key: \1"),
              (re.compile(r"^Index error: index=(-?\d+).*", re.S), r"index out of bounds: \1"),
              (re.compile(r"^divide by zero$"), "division by zero"))


def _run(expr: Any, data: dict[str, Any]) -> tuple[str, Any]:
    """("value", v), ("error", cel-go's wording) or ("budget", None)."""
    try:
        result = expr.eval(data=data)
    except RuntimeError as exc:
        text = _issues(exc)
        return ("budget", None) if "budget exceeded" in text else ("error", text)
    if result.type() == _T.ERROR:
        text = _issues(Exception(str(result.value())))
        if "budget exceeded" in text:
            return "budget", None
        for rx, repl in _GO_ERRORS:
            if rx.match(text):
                return "error", rx.sub(repl, text)
        return "error", text
    return "value", result.value()


def _evaluate(program: _Program, self_value: Any, old_value: Any) -> dict[str, Any]:
    """One rule on converted values: {"ok": bool, "message"?}, {"error": str} or {"budget": "rule"|"message"}."""
    data = {"self": self_value}
    if old_value is not None:
        data["oldSelf"] = old_value
    rule_data = dict(data, **{_HAS_OLD: old_value is not None, _OLD: old_value}) if program.optional else data
    kind, value = _run(program.expr, rule_data)
    if kind != "value":
        return {"budget": "rule"} if kind == "budget" else {"error": value}
    if value is True:
        return {"ok": True}
    outcome: dict[str, Any] = {"ok": False}
    if program.message is not None:
        kind, text = _run(program.message, data)
        if kind == "budget":
            return {"budget": "message"}
        text = text.strip() if kind == "value" and isinstance(text, str) else ""
        if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_BYTES:
            outcome["message"] = text
    return outcome


def _job_outcome(job: dict[str, Any]) -> dict[str, Any]:
    schema = job["schema"]
    program = _program(job["rule"], _kind_of(schema))
    old = _to_cel(job["old"], schema, job["root"]) if job["old"] is not None else None
    return _evaluate(program, _to_cel(job["self"], schema, job["root"]), old)


class _Worker:
    """A child Python process for risky rules: one job at a time, killed when it overruns."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._broken = False

    def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The outcome, {"budget": "rule"} if the job overran (or killed the worker), None if no worker."""
        try:
            payload = orjson.dumps(job) + b"\n"
        except TypeError:
            return None
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self.stop()
            proc = self._proc or self._start()
            if proc is None or proc.stdin is None or proc.stdout is None:
                return None
            try:
                proc.stdin.write(payload)
                proc.stdin.flush()
                ready = select.select([proc.stdout], [], [], RULE_TIME_BUDGET)[0]
                line = proc.stdout.readline() if ready else b""
            except (OSError, ValueError):
                line = b""
            if not line:
                self.stop()
                return {"budget": "rule"}
            result: dict[str, Any] = orjson.loads(line)
            return result

    def _start(self) -> subprocess.Popen[bytes] | None:
        if self._broken:
            return None
        code = f"import sys; sys.path[:0] = {sys.path!r}; from server.scheme.cel import _serve; _serve()"
        try:
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdout is not None
            if select.select([proc.stdout], [], [], 30)[0] and proc.stdout.readline() == b"ready\n":
                self._proc = proc
                return proc
            proc.kill()
            proc.wait()
        except OSError:
            pass
        self._broken = True  # evaluate in-process from now on (the iteration cap still holds)
        return None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


_worker = _Worker()
atexit.register(_worker.stop)


def _serve() -> None:
    """The worker's loop: one JSON job per line in, one outcome per line out."""
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            result = _job_outcome(orjson.loads(line))
        except Exception as exc:  # a worker never dies on a bad job
            result = {"error": f"internal error: {exc}"}
        out.write(orjson.dumps(result) + b"\n")
        out.flush()


def _small(value: Any, limit: int = SANDBOX_MIN_BYTES) -> bool:
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            total += sum(len(k) + 2 for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            total += len(item) + 2
            stack.extend(item)
        else:
            total += len(item) if isinstance(item, str) else 8
        if total > limit:
            return False
    return True


# -- the walk --------------------------------------------------------------------------------------

@dataclass
class _Walk:
    out: list[Cause]
    warnings: list[str] | None
    deadline: float
    stopped: bool = False


def _same(a: Any, b: Any) -> bool:
    """Go's DeepEqual on JSON values (1 is not 1.0, true is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _node(walk: _Walk, value: Any, old: Any, schema: Any, path: str, root: bool,
          ratchet: tuple[Any, Any] | None) -> None:
    if walk.stopped or value is None or not isinstance(schema, dict):
        return
    rules = _rules_here(schema)
    if rules:
        _check(walk, value, old, schema, path, root, ratchet, rules)
    if isinstance(value, dict):
        correlated = isinstance(old, dict) and schema.get("x-kubernetes-map-type") in (None, "granular", "atomic")
        props, additional = schema.get("properties"), schema.get("additionalProperties")
        props = props if isinstance(props, dict) else {}
        for key in sorted(value):
            sub = props.get(key, additional if key not in props else None)
            if not isinstance(sub, dict):
                continue
            old_sub = old.get(key) if correlated else None
            child = _join(path, key) if key in props else f"{path}[{key}]"
            _node(walk, value[key], old_sub, sub, child, False,
                  (value[key], old_sub) if correlated else ratchet)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys")
        keys = keys if isinstance(keys, list) else []
        olds: dict[Any, Any] | None = None
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list) and keys:
            olds = {_map_key(item, keys): item for item in old if isinstance(item, dict)}
        for i, item in enumerate(value):
            old_item = olds.get(_map_key(item, keys)) if olds is not None and isinstance(item, dict) else None
            _node(walk, item, old_item, schema["items"], f"{path}[{i}]", False,
                  (item, old_item) if olds is not None else ratchet)


def _map_key(item: dict[str, Any], keys: list[Any]) -> str:
    return orjson.dumps([item.get(k) for k in keys]).decode()


def _rules_here(schema: Schema) -> list[dict[str, Any]]:
    rules = [r for r in schema.get("x-kubernetes-validations") or () if isinstance(r, dict)]
    for sub in schema.get("allOf") or ():
        if isinstance(sub, dict):
            rules.extend(r for r in sub.get("x-kubernetes-validations") or () if isinstance(r, dict))
    return rules


def _check(walk: _Walk, value: Any, old: Any, schema: Schema, path: str, root: bool,
           ratchet: tuple[Any, Any] | None, rules: list[dict[str, Any]]) -> None:
    type_name = schema["type"] if isinstance(schema.get("type"), str) else ""
    here = path or "<nil>"
    kind = _kind_of(schema)
    converted: list[Any] = []

    def fail(where: str, detail: str) -> None:
        walk.out.append(field_value_invalid(where, type_name, detail))

    for rule in rules:
        source = rule.get("rule")
        if not isinstance(source, str) or not source.strip():
            continue
        program = _program(rule, kind)
        if program.expr is None:
            fail(here, f"rule compile error: {program.error}")
            continue
        if program.uses_old and old is None and not program.optional:
            continue
        if time.monotonic() > walk.deadline:
            fail(here, _OUT_OF_BUDGET)
            walk.stopped = True
            return
        outcome = None
        if program.risky and not (_small(value) and _small(old)):
            outcome = _worker.run({"rule": rule, "schema": schema, "root": root, "self": value, "old": old})
        if outcome is None:
            if not converted:
                converted[:] = [_to_cel(value, schema, root), _to_cel(old, schema, root) if old is not None else None]
            try:
                outcome = _evaluate(program, converted[0], converted[1])
            except Exception as exc:  # a value the runtime cannot take (an integer past 64 bits, ...)
                outcome = {"error": str(exc)}
        said = _rule_error_string(rule)
        if "budget" in outcome:
            if outcome["budget"] == "message":
                expr = rule.get("messageExpression")
                fail(_at(path, rule, schema), "no further validation rules will be run due to call cost exceeds "
                                              f"limit for messageExpression: {go_quote(str(expr))}")
            else:
                fail(here, _COST + said)
            walk.stopped = True
            return
        if "error" in outcome:
            error = outcome["error"]
            fail(here, f"'{error}': call arguments did not match a supported operator, function or macro "
                       f"signature for rule: {said}" if error.startswith("no such overload")
                 else f"{error} evaluating rule: {said}")
            continue
        if outcome["ok"]:
            continue
        detail = outcome.get("message") or _rule_message(rule)
        cause = _for_reason(_at(path, rule, schema), type_name, detail, rule.get("reason"))
        if not program.uses_old and ratchet is not None and ratchet[1] is not None and _same(*ratchet):
            if walk.warnings is not None:
                walk.warnings.append(f"{cause.field}: {cause.message}")
        else:
            walk.out.append(cause)


def _rule_error_string(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    return message.strip() if isinstance(message, str) and message else str(rule.get("rule", "")).strip()


def _rule_message(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    return message.strip() if isinstance(message, str) and message else f"failed rule: {_rule_error_string(rule)}"


def _for_reason(path: str, type_name: str, detail: str, reason: Any) -> Cause:
    if reason == "FieldValueForbidden":
        return field_forbidden(path, detail)
    if reason == "FieldValueRequired":
        return Cause("FieldValueRequired", f"Required value: {detail}", path)
    if reason == "FieldValueDuplicate":
        return field_duplicate(path, type_name)
    return field_value_invalid(path, type_name, detail)


def _at(path: str, rule: dict[str, Any], schema: Schema) -> str:
    """The node path with the rule's `fieldPath` appended (kube's `Child(NormalizedRuleFieldPath)`)."""
    field_path = rule.get("fieldPath")
    if not isinstance(field_path, str) or not field_path.strip():
        return path or "<nil>"
    normalized, error = normalize_field_path(field_path, schema)
    if error:
        return path or "<nil>"
    return _join(path, normalized)


_TOKEN_RX = re.compile(r"'(?:\\.|[^'\\])*'|[.\[\]]|[^.\[\]']+|'")
_UNQUOTE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "'": "'", "\\": "\\"}


def normalize_field_path(field_path: str, schema: Schema) -> tuple[str, str]:
    """kube's `ValidFieldPath`: (`foo.bar[key]`, "") or ("", why the path is invalid)."""
    tokens, out, node = _TOKEN_RX.findall(field_path), "", schema
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "[":
            if i + 1 >= len(tokens):
                return "", "unexpected end of JSON path"
            quoted = tokens[i + 1]
            if len(quoted) < 2 or quoted[0] != "'" or quoted[-1] != "'":
                return "", f"expected single quoted string but got {quoted}"
            try:
                name = re.sub(r"\\(.)", lambda m: _UNQUOTE[m.group(1)], quoted[1:-1])
            except KeyError as exc:
                return "", f"invalid string literal: invalid escape char \\{exc.args[0]}"
            if i + 2 >= len(tokens):
                return "", "unexpected end of JSON path"
            if tokens[i + 2] != "]":
                return "", f"expected ] but got {tokens[i + 2]}"
            i += 3
        elif tok == ".":
            if i + 1 >= len(tokens):
                return "", "unexpected end of JSON path"
            name = tokens[i + 1]
            i += 2
        else:
            return "", f"expected [ or . but got: {tok}"
        props = node.get("properties") if isinstance(node, dict) else None
        additional = node.get("additionalProperties") if isinstance(node, dict) else None
        if isinstance(props, dict):
            if name not in props:
                return "", "does not refer to a valid field"
            out, node = _join(out, name), props[name]
        elif isinstance(additional, dict):
            out, node = f"{out}[{name}]", additional
        else:
            return "", "does not refer to a valid field"
    return out, ""


# -- CRD-time checks -----------------------------------------------------------------------------------

_has_rules_cache: dict[int, tuple[Schema, bool]] = {}


def _any_rules(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if _rules_here(schema):
        return True
    props = schema.get("properties")
    if isinstance(props, dict) and any(_any_rules(p) for p in props.values()):
        return True
    return _any_rules(schema.get("additionalProperties")) or _any_rules(schema.get("items"))


def _go_rule(rule: dict[str, Any]) -> str:
    """The rule as Go's `%#v` prints kube's internal `apiextensions.ValidationRule`."""
    def text(key: str) -> str:
        value = rule.get(key)
        return go_quote(value if isinstance(value, str) else "")
    reason = "(0xc000a1b2c0)" if rule.get("reason") is not None else "(nil)"
    optional = "(0xc000a1b2c8)" if rule.get("optionalOldSelf") is not None else "(nil)"
    return (f"apiextensions.ValidationRule{{Rule:{text('rule')}, Message:{text('message')}, "
            f"MessageExpression:{text('messageExpression')}, Reason:(*apiextensions.FieldValueErrorReason){reason}, "
            f"FieldPath:{text('fieldPath')}, OptionalOldSelf:(*bool){optional}}}")


def _schema_errors(schema: Schema, path: str, uncorrelatable: str | None, compile: bool,
                   found: list[Cause], cel_found: list[Cause]) -> None:
    """kube's walk of a CRD schema: children first, then this node's rules; CEL compilation only
    where nothing at this level or deeper is wrong and outside allOf/anyOf/oneOf."""
    before = len(found)
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    for name in sorted(props):
        if isinstance(props[name], dict):
            _schema_errors(props[name], f"{_join(path, 'properties')}[{name}]", uncorrelatable, compile,
                           found, cel_found)
    if isinstance(schema.get("additionalProperties"), dict):
        _schema_errors(schema["additionalProperties"], _join(path, "additionalProperties"), uncorrelatable,
                       compile, found, cel_found)
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(junctor) or ()):
            if isinstance(sub, dict):
                _schema_errors(sub, f"{_join(path, junctor)}[{i}]", uncorrelatable, False, found, cel_found)
    items = schema.get("items")
    if isinstance(items, dict):
        keep = uncorrelatable or (None if schema.get("x-kubernetes-list-type") == "map" else path or "<nil>")
        _schema_errors(items, _join(path, "items"), keep, compile, found, cel_found)
    rules = schema.get("x-kubernetes-validations")
    if isinstance(rules, list) and rules:
        rules = [r if isinstance(r, dict) else {} for r in rules]
        _rule_checks(schema, rules, path, found)
        if compile and len(found) == before:
            _rule_compilation(schema, rules, path, uncorrelatable, cel_found)


def _rule_checks(schema: Schema, rules: list[dict[str, Any]], path: str, found: list[Cause]) -> None:
    """kube's per-rule checks of a CRD: rule, message, messageExpression, reason, fieldPath."""
    base = _join(path, "x-kubernetes-validations")
    for i, rule in enumerate(rules):
        at = f"{base}[{i}]"
        text, message = str(rule.get("rule") or ""), rule.get("message")
        message = message if isinstance(message, str) else ""
        if not text.strip():
            found.append(Cause("FieldValueRequired", "Required value: rule is not specified", f"{at}.rule"))
        elif message and not message.strip():
            found.append(field_value_invalid(f"{at}.message", message, "message must be non-empty if specified"))
        elif re.search(r"[\n\r]", message.strip()):
            found.append(field_value_invalid(f"{at}.message", message, "message must not contain line breaks"))
        elif re.search(r"[\n\r]", text.strip()) and not message.strip():
            found.append(Cause("FieldValueRequired", "Required value: message must be specified if rule contains "
                                                     "line breaks", f"{at}.message"))
        expr = rule.get("messageExpression")
        if isinstance(expr, str) and expr and not expr.strip():
            found.append(Cause("FieldValueRequired", "Required value: messageExpression must be non-empty if "
                                                     "specified", f"{at}.messageExpression"))
        reason = rule.get("reason")
        if reason is not None and reason not in REASONS:
            found.append(field_not_supported(f"{at}.reason", reason, list(REASONS)))
        field_path = rule.get("fieldPath")
        if isinstance(field_path, str) and field_path:
            if not field_path.strip():
                found.append(field_value_invalid(f"{at}.fieldPath", field_path,
                                                 "fieldPath must be non-empty if specified"))
            if re.search(r"[\n\r]", field_path):
                found.append(field_value_invalid(f"{at}.fieldPath", field_path,
                                                 "fieldPath must not contain line breaks"))
            why = normalize_field_path(field_path, schema)[1]
            if why:
                found.append(field_value_invalid(f"{at}.fieldPath", field_path,
                                                 f"fieldPath must be a valid path: {why}"))


def _rule_compilation(schema: Schema, rules: list[dict[str, Any]], path: str, uncorrelatable: str | None,
                      found: list[Cause]) -> None:
    base, kind = _join(path, "x-kubernetes-validations"), _kind_of(schema)
    for i, rule in enumerate(rules):
        at = f"{base}[{i}]"
        program = _program(rule, kind)
        if program.error:
            found.append(Cause("FieldValueInvalid", f"Invalid value: {_go_rule(rule)}: {program.error}",
                               f"{at}.rule"))
        if program.message_error:
            found.append(Cause("FieldValueInvalid", f"Invalid value: {_go_rule(rule)}: {program.message_error}",
                               f"{at}.messageExpression"))
        if program.uses_old and uncorrelatable:
            found.append(field_value_invalid(f"{at}.rule", rule.get("rule"), "oldSelf cannot be used on the "
                                             f"uncorrelatable portion of the schema within {uncorrelatable}"))
        elif program.error == "" and not program.uses_old and rule.get("optionalOldSelf") is not None:
            found.append(field_value_invalid(f"{at}.optionalOldSelf", rule.get("optionalOldSelf"),
                                             "may not be set if oldSelf is not used in rule"))
