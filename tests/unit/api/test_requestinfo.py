from __future__ import annotations

import pytest

from kapi.api.requestinfo import parse_request_info


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/v1/namespaces", ("list", "", "v1", "", "namespaces", "", "")),
        ("GET", "/api/v1/namespaces/foo", ("get", "", "v1", "foo", "namespaces", "foo", "")),
        ("PUT", "/api/v1/namespaces/foo/status", ("update", "", "v1", "foo", "namespaces", "foo", "status")),
        ("GET", "/apis/hello.zeng.dev/v1/foos", ("list", "hello.zeng.dev", "v1", "", "foos", "", "")),
        ("POST", "/apis/hello.zeng.dev/v1/namespaces/default/foos",
         ("create", "hello.zeng.dev", "v1", "default", "foos", "", "")),
        ("PATCH", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a/status",
         ("patch", "hello.zeng.dev", "v1", "default", "foos", "a", "status")),
        ("DELETE", "/apis/g/v1/namespaces/ns/foos", ("deletecollection", "g", "v1", "ns", "foos", "", "")),
        ("DELETE", "/apis/g/v1/widgets/w", ("delete", "g", "v1", "", "widgets", "w", "")),
        ("GET", "/apis/g/v1/watch/namespaces/ns/foos", ("watch", "g", "v1", "ns", "foos", "", "")),
    ],
)
def test_resource_paths(method: str, path: str, expected: tuple[str, ...]) -> None:
    info = parse_request_info(method, path)
    assert info.is_resource_request
    assert (info.verb, info.group, info.version, info.namespace, info.resource, info.name, info.subresource) == expected


def test_watch_param_makes_a_watch() -> None:
    assert parse_request_info("GET", "/apis/g/v1/foos", watch_param=True).verb == "watch"


@pytest.mark.parametrize("path", ["/", "/version", "/healthz", "/api", "/apis", "/apis/g", "/apis/g/v1", "/api/v1"])
def test_non_resource_paths(path: str) -> None:
    assert not parse_request_info("GET", path).is_resource_request


def test_discovery_parts() -> None:
    info = parse_request_info("GET", "/apis/hello.zeng.dev/v1")
    assert (info.api_prefix, info.group, info.version) == ("apis", "hello.zeng.dev", "v1")
