"""hello.zeng.dev: the example API group, written as a kapi plugin (`kapi start --plugin ...`).

`Foo` has two versions of different shapes. v2 is the hub and the storage
version: `spec.image` and `spec.config.{msg,msg1}`, and a `status`. v1 has
only `spec.msg` and `spec.msg1`; what it cannot express (`spec.image`) rides
in an annotation, as Kubernetes does, so objects round-trip through either
version without loss. Defaulting and validation are plain Python on the hub.
`foos/<name>/greeting?to=Ann` is a connect subresource (as pods/exec): admission
sees it as CONNECT on a `FooGreetingOptions`, then the Foo says its message.
"""
from __future__ import annotations

import json

from pydantic import BaseModel, Field

from kapi.plugins import (
    APIGroup, Column, Connect, ConnectRequest, FieldError, Invalid, KubeObject, Plugin, Resource, Version,
)

V2_FIELDS = "hello.zeng.dev/v2-fields"  # v2-only fields of an object read in v1


class Config(BaseModel):
    msg: str | None = Field(None, description="msg says hello")
    msg1: str | None = Field(None, description="msg1 says hello again")


class FooSpecV2(BaseModel):
    image: str | None = Field(None, description="the container image that says hello")
    config: Config | None = Field(None, description="what the image says")


class FooStatus(BaseModel):
    phase: str | None = Field(None, description="where the Foo is in its life")


class FooV2(KubeObject):
    """Foo is a sample resource with an image and its messages."""

    spec: FooSpecV2 | None = None
    status: FooStatus | None = None


class FooSpecV1(BaseModel):
    """FooSpec holds the messages a Foo carries."""

    msg: str | None = Field(None, description="msg says hello")
    msg1: str | None = Field(None, description="msg1 says hello again")


class FooV1(KubeObject):
    """Foo is a sample resource with a message."""

    spec: FooSpecV1 | None = None
    status: FooStatus | None = None


def _kept(annotations: dict[str, str]) -> dict[str, object]:
    """The v2-only fields a v1 object carries in its annotation; a malformed one is the client's 422."""
    field = f"metadata.annotations[{V2_FIELDS}]"
    try:
        kept = json.loads(annotations.pop(V2_FIELDS, "{}") or "{}")
    except ValueError:
        raise Invalid(FieldError(field, "must be a JSON object", annotations.get(V2_FIELDS))) from None
    if not isinstance(kept, dict) or not isinstance(kept.get("image", ""), str) or \
            not isinstance(kept.get("config", {}), dict):
        raise Invalid(FieldError(field, 'must be {"image": string} and/or {"config": {}}', kept))
    return kept


def v1_to_hub(foo: FooV1) -> FooV2:
    metadata = dict(foo.metadata)
    annotations = dict(metadata.get("annotations") or {})
    kept = _kept(annotations)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    spec = None
    if foo.spec is not None or kept.get("image") is not None:
        config = Config(msg=foo.spec.msg, msg1=foo.spec.msg1) if foo.spec is not None else None
        if config is not None and config.msg is None and config.msg1 is None and "config" not in kept:
            config = None
        spec = FooSpecV2(image=kept.get("image"), config=config)
    return FooV2(metadata=metadata, spec=spec, status=foo.status)


def hub_to_v1(foo: FooV2) -> FooV1:
    metadata = dict(foo.metadata)
    spec = None
    if foo.spec is not None:
        config = foo.spec.config
        spec = FooSpecV1(msg=config.msg, msg1=config.msg1) if config is not None else FooSpecV1()
        kept = {"image": foo.spec.image} if foo.spec.image is not None else {}
        if config is not None and config.msg is None and config.msg1 is None:
            kept["config"] = {}
        if kept:
            metadata["annotations"] = {**(metadata.get("annotations") or {}), V2_FIELDS: json.dumps(kept)}
    return FooV1(metadata=metadata, spec=spec, status=foo.status)


def validate(foo: FooV2, _old: FooV2 | None) -> list[FieldError]:
    image = foo.spec.image if foo.spec else None
    if image is not None and (not image or any(c.isspace() for c in image)):
        return [FieldError("spec.image", "must be a non-empty image reference without spaces", image)]
    return []


async def greet(call: ConnectRequest) -> str:
    """The Foo's message, addressed to `?to=` (default: world), in whichever version was asked."""
    spec = call.obj.get("spec") or {}
    message = spec.get("msg") or (spec.get("config") or {}).get("msg") or "hello"
    return f"{message}, {call.options.get('to', 'world')}!\n"


FOO = Resource(
    kind="Foo", plural="foos", short_names=("fo",), categories=("all",), validate=validate,
    connect=[Connect("greeting", greet, methods=("GET", "POST"))],
    versions=[
        Version("v2", FooV2, storage=True, columns=[
            Column("Image", ".spec.image", description="the image"),
            Column("Message", ".spec.config.msg", description="the message"),
            Column("Message1", ".spec.config.msg1", description="the second message", priority=1),
            Column("Phase", ".status.phase"),
        ]),
        Version("v1", FooV1, to_hub=v1_to_hub, from_hub=hub_to_v1, columns=[
            Column("Message", ".spec.msg", description="the message"),
            Column("Message1", ".spec.msg1", description="the second message", priority=1),
        ]),
    ],
)

plugin = Plugin(groups=[APIGroup("hello.zeng.dev", [FOO])])
