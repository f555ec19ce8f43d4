"""Regenerate the protobuf index kapi uses to read kubectl's protobuf request bodies.

    python scripts/gen_kube_proto.py [--release v0.32.0]
        [--api-dir DIR --apimachinery-dir DIR --kubernetes-dir DIR]

kubectl sends built-in objects as `application/vnd.kubernetes.protobuf`. Their
field numbers and types are public facts stated in the `generated.proto` files
of the `k8s.io/api` and `k8s.io/apimachinery` Go modules. This script reads
those files with a small parser of the proto2 subset they use, and writes
`server/api/data/kube-proto-v1.<minor>.<patch>.json.gz` (module v0.32.0 is
Kubernetes v1.32.0):

    {"release": "v0.32.0",
     "messages": {"k8s.io.api.apps.v1.DeploymentSpec": {"1": ["replicas", "int32", "", 1], ...}},
     "forms": {"k8s.io.apimachinery.pkg.apis.meta.v1.Time": "timestamp", ...},
     "enums": {},
     "kinds": {"apps/v1": {"Deployment": "k8s.io.api.apps.v1.Deployment", ...}, "v1": {...}}}

A field is `[json name, type, label, keep_zero]`: the type is a scalar name
(`string`, `int32`, ...) or a message/enum's full name; the label is "",
"repeated", "map" (then the type is `[key type, value type]`) or "inline" (a
struct Go embeds with `json:",inline"`: its fields join the parent's); keep_zero
is 1 when an explicit zero/false of the field must survive decoding (see
`keep_zero`). `forms` names the messages whose JSON form is not an object,
from go-to-protobuf's comment markers. `kinds` maps each apiVersion (the group
from the package directory, `API_GROUPS`) to its kinds' messages.

Three facts the .proto files cannot state come from the published OpenAPI v3
documents of the same release (`api/openapi-spec/v3` of the `k8s.io/kubernetes`
module): the JSON names of the few fields whose protobuf name differs
(`Webhooks`, `uID`), which fields are inlined, and which messages are kinds
(`x-kubernetes-group-version-kind`). No Go code is read. Without the `--*-dir`
options the three module zips are fetched from the Go module proxy and kept in
memory: never written to disk, never committed.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

OUT_DIR = Path(__file__).resolve().parent.parent / "server" / "api" / "data"
PROXY = "https://proxy.golang.org/k8s.io/{module}/@v/{release}.zip"
OPENAPI_DIR = "api/openapi-spec/v3/"  # inside the k8s.io/kubernetes module

# The stable k8s.io/api packages kubectl can post (package dir → API group).
API_GROUPS = {
    "core/v1": "", "apps/v1": "apps", "batch/v1": "batch", "autoscaling/v1": "autoscaling",
    "autoscaling/v2": "autoscaling", "networking/v1": "networking.k8s.io", "policy/v1": "policy",
    "rbac/v1": "rbac.authorization.k8s.io", "storage/v1": "storage.k8s.io",
    "discovery/v1": "discovery.k8s.io", "scheduling/v1": "scheduling.k8s.io", "node/v1": "node.k8s.io",
    "certificates/v1": "certificates.k8s.io", "coordination/v1": "coordination.k8s.io",
    "flowcontrol/v1": "flowcontrol.apiserver.k8s.io", "events/v1": "events.k8s.io",
    "authentication/v1": "authentication.k8s.io", "authorization/v1": "authorization.k8s.io",
    "admissionregistration/v1": "admissionregistration.k8s.io",
}
APIMACHINERY_DIRS = ("pkg/apis/meta/v1", "pkg/api/resource", "pkg/util/intstr", "pkg/runtime", "pkg/runtime/schema")

SCALARS = {
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
}
# Message-level comment markers of go-to-protobuf that change a message's JSON form.
FORM_MARKERS = (
    ("+protobuf.as=Timestamp", "timestamp"),   # metav1.Time, MicroTime: an RFC 3339 string
    ("+protobuf.embed=string", "string"),      # resource.Quantity: the string itself
    ("+protobuf.nullable=true", "list"),       # ExtraValue, Verbs: a named []string, `items` on the wire
)
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
# "This is a pointer to distinguish ...", "Defaulted to nil", "Defaults to 1", 'Default is "true"'.
_POINTER_HINT = re.compile(
    r'\bpointer\b|\bnil\b|\bnull\b|\bdefault(?:s|ed)?(?: value)? (?:to|is|of) "?(?:true|\d*[1-9])', re.IGNORECASE)


def keep_zero(type_: str, comment: str) -> bool:
    """Whether a field's explicit zero (0, false, IntOrString 0) should survive decoding.

    Go writes non-pointer fields always and pointer fields only when set, so
    the wire cannot tell `replicas: 0` from an int nobody set; the .proto keeps
    only the Go doc comment. Keep the zero when the field is required (no
    `+optional`: Go's JSON prints its zero too), when the comment calls it a
    pointer or mentions nil/null, when it documents a non-zero default (so a
    zero differs from leaving it out), and for IntOrString (every optional one
    in the stable API but Service `targetPort` is a pointer). Otherwise a zero
    is what leaving the field out means, and Go's `omitempty` drops it too."""
    if type_ == INT_OR_STRING or "+optional" not in comment:
        return True
    return bool(_POINTER_HINT.search(comment))


class ProtoSyntaxError(ValueError):
    """A .proto file that this small parser does not understand."""


_TOKEN = re.compile(
    r'(?P<space>\s+)|(?P<line>//[^\n]*)|(?P<block>/\*.*?\*/)|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<word>[A-Za-z0-9_.+-]+)|(?P<punct>[{}<>;=,()\[\]])",
    re.DOTALL,
)


def tokenize(text: str) -> Iterator[tuple[str, str]]:
    """(token, the comment lines right above it); blank lines end a comment block."""
    comment: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ProtoSyntaxError(f"unexpected character {text[pos]!r} at offset {pos}")
        pos = match.end()
        kind, value = match.lastgroup, match.group()
        if kind == "space":
            if value.count("\n") > 1:
                comment = []
        elif kind == "line":
            comment.append(value[2:].strip())
        elif kind == "block":
            comment = []  # the licence header
        else:
            yield value, "\n".join(comment)
            comment = []


@dataclass
class Field:
    name: str
    number: int
    type: str
    label: str  # "", "repeated" or "map"
    key_type: str = ""
    comment: str = ""


@dataclass
class Message:
    full_name: str
    comment: str
    fields: list[Field] = field(default_factory=list)


@dataclass
class ProtoFile:
    package: str = ""
    messages: list[Message] = field(default_factory=list)
    enums: dict[str, dict[int, str]] = field(default_factory=dict)


class Parser:
    """A recursive-descent parser for the proto2 subset go-to-protobuf writes."""

    def __init__(self, text: str) -> None:
        self.tokens = list(tokenize(text))
        self.pos = 0
        self.file = ProtoFile()

    def peek(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ProtoSyntaxError("unexpected end of file")
        token = self.tokens[self.pos]
        if expected is not None and token[0] != expected:
            raise ProtoSyntaxError(f"expected {expected!r}, got {token[0]!r}")
        self.pos += 1
        return token

    def skip_statement(self) -> None:
        while self.take()[0] != ";":
            pass

    def parse(self) -> ProtoFile:
        while self.pos < len(self.tokens):
            word, comment = self.take()
            if word == "package":
                self.file.package = self.take()[0]
                self.take(";")
            elif word in ("syntax", "import", "option"):
                self.skip_statement()
            elif word == "message":
                self.message(self.file.package, comment)
            elif word == "enum":
                self.enum(self.file.package)
            elif word != ";":
                raise ProtoSyntaxError(f"unexpected {word!r} at the top level")
        return self.file

    def message(self, scope: str, comment: str) -> None:
        name = self.take()[0]
        message = Message(f"{scope}.{name}" if scope else name, comment)
        self.file.messages.append(message)
        self.take("{")
        while self.peek() != "}":
            word, field_comment = self.take()
            if word == "message":
                self.message(message.full_name, field_comment)
            elif word == "enum":
                self.enum(message.full_name)
            elif word in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif word == "oneof":
                self.take()
                self.take("{")
                while self.peek() != "}":
                    message.fields.append(self.field("", self.take()[0], self.take()[1]))
                self.take("}")
            elif word == "map":
                self.take("<")
                key = self.take()[0]
                self.take(",")
                value = self.take()[0]
                self.take(">")
                message.fields.append(self.field("map", value, field_comment, key))
            elif word in ("optional", "repeated", "required"):
                label = "repeated" if word == "repeated" else ""
                message.fields.append(self.field(label, self.take()[0], field_comment))
            elif word != ";":
                raise ProtoSyntaxError(f"unexpected {word!r} in message {message.full_name}")
        self.take("}")

    def field(self, label: str, type_: str, comment: str, key: str = "") -> Field:
        name = self.take()[0]
        self.take("=")
        number = int(self.take()[0])
        if self.peek() == "[":  # field options, e.g. [packed = true]
            while self.take()[0] != "]":
                pass
        self.take(";")
        return Field(name, number, type_, label, key, comment)

    def enum(self, scope: str) -> None:
        values: dict[int, str] = {}
        name = self.take()[0]
        self.file.enums[f"{scope}.{name}" if scope else name] = values
        self.take("{")
        while self.peek() != "}":
            word = self.take()[0]
            if word in ("option", "reserved"):
                self.skip_statement()
                continue
            self.take("=")
            values.setdefault(int(self.take()[0]), word)
            if self.peek() == "[":
                while self.take()[0] != "]":
                    pass
            self.take(";")
        self.take("}")


def resolve(type_: str, scope: str, known: set[str]) -> str:
    """A type name as written, looked up the way protoc does: innermost scope first."""
    if type_ in SCALARS:
        return type_
    if type_.startswith("."):
        if type_[1:] not in known:
            raise ProtoSyntaxError(f"unknown type {type_}")
        return type_[1:]
    parts = scope.split(".")
    while parts:
        candidate = ".".join(parts + [type_])
        if candidate in known:
            return candidate
        parts.pop()
    if type_ in known:
        return type_
    raise ProtoSyntaxError(f"unknown type {type_} in {scope}")


def openapi_name(message: str) -> str:
    """`k8s.io.api.core.v1.Volume` → `io.k8s.api.core.v1.Volume`, the OpenAPI schema name."""
    return "io.k8s." + message[len("k8s.io."):] if message.startswith("k8s.io.") else message


def json_name(message: str, f: Field, schemas: dict[str, Any]) -> tuple[str, bool]:
    """(the field's JSON name, whether Go inlines its struct into the parent).

    generated.proto names a field by its protobuf tag, which is the JSON name
    except for a few (`Webhooks`, `uID`, `aPIGroup`: the Go field's name), and
    names a struct embedded with `json:",inline"` (Volume.volumeSource,
    Probe.handler) like any other field (RoleBinding.roleRef). The published
    OpenAPI schema of the message settles both: its property with the same
    name ignoring case is the JSON name; a message field with no such
    property is inlined."""
    schema = schemas.get(openapi_name(message))
    if not schema or "properties" not in schema or f.name in schema["properties"]:
        return f.name, False
    by_lower = {p.lower(): p for p in schema["properties"]}
    if f.name.lower() in by_lower:
        return by_lower[f.name.lower()], False
    return f.name, f.label == "" and f.type.lstrip(".") not in SCALARS


def build_index(files: dict[str, str], release: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """The index from {module-relative dir: generated.proto text} and the OpenAPI schemas."""
    parsed = {d: Parser(text).parse() for d, text in files.items()}
    messages = [m for p in parsed.values() for m in p.messages]
    enums = {name: values for p in parsed.values() for name, values in p.enums.items()}
    known = {m.full_name for m in messages} | set(enums)
    index: dict[str, Any] = {"release": release, "messages": {}, "forms": {}, "kinds": {},
                             "enums": {n: {str(k): v for k, v in vs.items()} for n, vs in enums.items()}}
    for message in messages:
        spec: dict[str, list[Any]] = {}
        for f in message.fields:
            value_type = resolve(f.type, message.full_name, known)
            type_: Any = value_type
            name, inline = json_name(message.full_name, f, schemas)
            label = "inline" if inline else f.label
            if f.label == "map":
                type_ = [resolve(f.key_type, message.full_name, known), value_type]
            spec[str(f.number)] = [name, type_, label, int(keep_zero(value_type, f.comment))]
        index["messages"][message.full_name] = spec
        for marker, form in FORM_MARKERS:
            if marker in message.comment:
                index["forms"][message.full_name] = form
    for directory, proto in parsed.items():
        if directory not in API_GROUPS:
            continue
        group, version = API_GROUPS[directory], directory.rsplit("/", 1)[1]
        api_version = f"{group}/{version}" if group else version
        for message in proto.messages:
            gvks = schemas.get(openapi_name(message.full_name), {}).get("x-kubernetes-group-version-kind", [])
            for gvk in gvks:
                if (gvk.get("group", ""), gvk.get("version")) == (group, version):
                    index["kinds"].setdefault(api_version, {})[gvk["kind"]] = message.full_name
    return index


def module_files(module: str, release: str, directory: Path | None, under: str, suffix: str) -> dict[str, bytes]:
    """{module-relative path: bytes} of the files below `under` whose names end in
    `suffix`, from an unpacked module dir or the proxy's zip (kept in memory, never written)."""
    if directory is not None:
        root = directory / under
        return {p.relative_to(directory).as_posix(): p.read_bytes()
                for p in sorted(root.rglob(f"*{suffix}")) if p.is_file()}
    url = PROXY.format(module=module, release=release)
    with urllib.request.urlopen(url) as response:  # noqa: S310 (a fixed https URL)
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    prefix = f"k8s.io/{module}@{release}/"
    return {n[len(prefix):]: archive.read(n) for n in archive.namelist()
            if n.startswith(prefix + under) and n.endswith(suffix)}


def read_protos(module: str, release: str, directory: Path | None, dirs: Any) -> dict[str, str]:
    """{package dir: generated.proto text} for the package dirs asked for."""
    found = module_files(module, release, directory, "", "generated.proto")
    wanted = {f"{d}/generated.proto": d for d in dirs}
    missing = set(wanted) - set(found)
    if missing:
        raise SystemExit(f"k8s.io/{module}@{release} lacks {sorted(missing)}")
    return {d: found[path].decode() for path, d in wanted.items()}


def read_schemas(release: str, directory: Path | None) -> dict[str, Any]:
    """Every schema of the published OpenAPI v3 documents (k8s.io/kubernetes)."""
    schemas: dict[str, Any] = {}
    for _, data in sorted(module_files("kubernetes", release, directory, OPENAPI_DIR, ".json").items()):
        schemas.update(json.loads(data).get("components", {}).get("schemas", {}))
    if not schemas:
        raise SystemExit(f"no OpenAPI v3 documents in k8s.io/kubernetes@{release}")
    return schemas


def write_index(index: dict[str, Any], out: Path) -> None:
    """gzip with mtime 0 and sorted keys, so the same input gives the same bytes."""
    data = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="v0.32.0", help="the k8s.io/api and apimachinery module version")
    parser.add_argument("--api-dir", type=Path, help="an unpacked k8s.io/api module (skips the download)")
    parser.add_argument("--apimachinery-dir", type=Path, help="an unpacked k8s.io/apimachinery module")
    parser.add_argument("--kubernetes-dir", type=Path,
                        help="an unpacked k8s.io/kubernetes module (for api/openapi-spec/v3)")
    parser.add_argument("--out", type=Path,
                        help="output file (default: server/api/data/kube-proto-<kube release>.json.gz)")
    args = parser.parse_args(argv)
    kube_release = "v1." + args.release.split(".", 1)[1]  # module v0.32.0 ships Kubernetes v1.32.0
    files = read_protos("api", args.release, args.api_dir, API_GROUPS)
    files.update(read_protos("apimachinery", args.release, args.apimachinery_dir, APIMACHINERY_DIRS))
    index = build_index(files, args.release, read_schemas(kube_release, args.kubernetes_dir))
    out = args.out or OUT_DIR / f"kube-proto-{kube_release}.json.gz"
    write_index(index, out)
    kinds = sum(len(k) for k in index["kinds"].values())
    print(f"wrote {out}: {len(index['messages'])} messages, {kinds} kinds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
