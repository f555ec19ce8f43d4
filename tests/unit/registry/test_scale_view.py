from __future__ import annotations

import pytest

from kapi.api import errors
from kapi.registry.scale import read_path, replicas_of, to_scale, with_replicas
from kapi.scheme.definitions import ScaleDef

SCALE = ScaleDef(".spec.replicas", ".status.replicas", ".status.selector")


def test_scale_view_reads_the_paths() -> None:
    obj = {"metadata": {"name": "w", "namespace": "d", "resourceVersion": "7", "labels": {"a": "b"}},
           "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=w"}}
    scale = to_scale(obj, SCALE)
    assert scale["apiVersion"] == "autoscaling/v1" and scale["kind"] == "Scale"
    assert scale["metadata"] == {"name": "w", "namespace": "d", "resourceVersion": "7"}
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=w"}


def test_writing_replicas_creates_missing_parents() -> None:
    obj: dict = {"metadata": {"name": "w"}}
    with_replicas(obj, 4, ScaleDef(".spec.scaling.replicas", ".status.replicas"))
    assert read_path(obj, ".spec.scaling.replicas") == 4


@pytest.mark.parametrize("bad", [-1, "3", 1.5, True])
def test_bad_replicas_are_invalid(bad: object) -> None:
    with pytest.raises(errors.Invalid) as exc:
        replicas_of({"spec": {"replicas": bad}}, "w")
    assert exc.value.causes[0].field == "spec.replicas"


def test_scale_body_must_be_an_object() -> None:
    with pytest.raises(errors.BadRequest):
        replicas_of([1], "w")
