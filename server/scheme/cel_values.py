"""CEL for CRD rules: kube's value mapping, libraries, compilation and evaluation (no I/O)."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_optional, ext_strings  # type: ignore[import-untyped]


Schema = dict[str, Any]

RULE_TIME_BUDGET = 0.1  # seconds; kube's PerCallLimit "gives roughly 0.1 second"
TOTAL_TIME_BUDGET = 1.0  # seconds per object; kube's RuntimeCELCostBudget "roughly 1 second"
SANDBOX_MIN_BYTES = 256  # risky rules over values at least this big run in the worker process
MAX_MESSAGE_BYTES = 5 * 1024
_WORKER_MEMORY = 2 << 30
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
_RISKY_RX = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter|replace)\s*\(|\bsets\s*\.")
_BACKTRACKING_RX = re.compile(r"\.\s*(?:find|findAll)\s*\(")  # Python's re, not RE2: isolate whatever the size
_COST = "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to " \
        "call cost exceeds limit for rule: "
_OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"
_BLOCKED = ("some validation rules were not checked because the object was invalid; "
            "correct the existing errors to complete validation")



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


def kube_library() -> Any:
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


def standard_extensions() -> list[Any]:
    """kube's CEL libraries as this runtime has them: strings, optionals, Lists, Regex and Sets."""
    return [ext_strings.ExtStrings(), ext_optional.ExtOptional(), kube_library()]


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
            variables=variables, extensions=standard_extensions())
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
    isolate: int = 0  # 0: in-process; 1: in the worker when the value is big; 2: always in the worker


_programs: dict[tuple[Any, ...], _Program] = {}


def _issues(exc: Exception) -> str:
    """cel-cpp's status text as cel-go's `issues.String()`."""
    text = re.sub(r"^[A-Z_]+: ", "", str(exc))
    return re.sub(r" \[[A-Z_]+\]$", "", text)


def compile_source(env: Any, source: str) -> tuple[Any, str]:
    try:
        return env.compile(source), ""
    except RuntimeError as exc:
        return None, _issues(exc)


def _program(rule: dict[str, Any], kind: str) -> _Program:
    source, message = rule.get("rule"), rule.get("messageExpression")
    optional = rule.get("optionalOldSelf") is True
    key = (kind, str(source), str(message), optional)
    program = _programs.get(key)
    if program is not None:
        return program
    if len(_programs) > 4096:
        _programs.clear()
    src = source if isinstance(source, str) else ""
    expr, issues = compile_source(_env(kind, "optional" if optional else "typed"), src)
    error = "" if expr is not None else f"compilation failed: {issues}"
    if expr is not None and expr.return_type() not in (_T.BOOL, _T.DYN):
        expr, error = None, "cel expression must evaluate to a bool"
    uses_old = expr is not None and compile_source(_env(kind, "none"), src)[0] is None
    if expr is not None and optional and uses_old:
        expr, issues = compile_source(_env(kind, "optional"),
                                      f"[{_HAS_OLD} ? optional.of({_OLD}) : optional.none()].all(oldSelf, ({src}))")
        error = "" if expr is not None else f"compilation failed: {issues}"
    msg_expr, msg_error = None, ""
    if isinstance(message, str) and message.strip():
        msg_expr, issues = compile_source(_env(kind, "typed"), message)
        msg_error = f"messageExpression compilation failed: {issues}" if msg_expr is None else ""
        if msg_expr is not None and msg_expr.return_type() not in (_T.STRING, _T.DYN):
            msg_expr, msg_error = None, "messageExpression must evaluate to a string"
    code = _STRINGS_RX.sub("''", src + "\n" + (message if isinstance(message, str) else ""))
    isolate = 2 if _BACKTRACKING_RX.search(code) else 1 if _RISKY_RX.search(code) else 0
    program = _programs[key] = _Program(expr, error, uses_old, optional, msg_expr, msg_error, isolate)
    return program


# -- evaluation ----------------------------------------------------------------------------------

_GO_ERRORS = ((re.compile(r"^No matching overloads? found.*", re.S), "no such overload"),
              (re.compile(r'^Key not found in map : "?(.*?)"?$', re.S), r"no such key: \1"),
              (re.compile(r"^Index error: index=(-?\d+).*", re.S), r"index out of bounds: \1"),
              (re.compile(r"^divide by zero$"), "division by zero"))


def run_compiled(expr: Any, data: dict[str, Any]) -> tuple[str, Any]:
    """("value", v), ("error", cel-go's wording) or ("budget", None)."""
    try:
        result = expr.eval(data=data)
        if result.type() != _T.ERROR:
            return "value", result.value()
        text = _issues(Exception(str(result.value())))
    except RuntimeError as exc:
        text = _issues(exc)
    if "budget exceeded" in text:
        return "budget", None
    for rx, repl in _GO_ERRORS:
        if rx.match(text):
            return "error", rx.sub(repl, text)
    return "error", text


def _evaluate(program: _Program, self_value: Any, old_value: Any) -> dict[str, Any]:
    """One rule on converted values: {"ok": bool, "message"?}, {"error": str} or {"budget": "rule"|"message"}."""
    data = {"self": self_value}
    if old_value is not None:
        data["oldSelf"] = old_value
    rule_data = dict(data, **{_HAS_OLD: old_value is not None, _OLD: old_value}) if program.optional else data
    kind, value = run_compiled(program.expr, rule_data)
    if kind != "value":
        return {"budget": "rule"} if kind == "budget" else {"error": value}
    if value is True:
        return {"ok": True}
    outcome: dict[str, Any] = {"ok": False}
    if program.message is not None:
        kind, text = run_compiled(program.message, data)
        if kind == "budget":
            return {"budget": "message"}
        text = text.strip() if kind == "value" and isinstance(text, str) else ""
        if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_BYTES:
            outcome["message"] = text
    return outcome


# -- paths -------------------------------------------------------------------------------------

def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _rules_here(schema: Schema) -> list[dict[str, Any]]:
    rules = [r for r in schema.get("x-kubernetes-validations") or () if isinstance(r, dict)]
    for sub in schema.get("allOf") or ():
        if isinstance(sub, dict):
            rules.extend(r for r in sub.get("x-kubernetes-validations") or () if isinstance(r, dict))
    return rules


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
