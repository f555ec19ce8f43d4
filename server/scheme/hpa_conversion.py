"""HorizontalPodAutoscaler between autoscaling/v1 and v2 (stored as v2, as kube stores it).

v1 knows one target, CPU utilisation; v2 has a list of metrics. kube keeps
what v1 cannot say in annotations; here a v1 read shows the CPU target and
a v1 write becomes one Resource metric, which covers what v1 clients send.
"""
from __future__ import annotations

from typing import Any

Object = dict[str, Any]
_V1, _V2 = "autoscaling/v1", "autoscaling/v2"


def _cpu_metric(utilization: Any) -> Object:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                       "averageUtilization": utilization}}}


def _to_v2(obj: Object) -> Object:
    spec, status = obj.get("spec"), obj.get("status")
    if isinstance(spec, dict) and "targetCPUUtilizationPercentage" in spec:
        spec["metrics"] = [_cpu_metric(spec.pop("targetCPUUtilizationPercentage"))]
    if isinstance(status, dict) and "currentCPUUtilizationPercentage" in status:
        current = status.pop("currentCPUUtilizationPercentage")
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]
    obj["apiVersion"] = _V2
    return obj


def _cpu_of(metrics: Any, key: str) -> Any:
    for metric in metrics if isinstance(metrics, list) else []:
        resource = metric.get("resource") if isinstance(metric, dict) else None
        if isinstance(resource, dict) and resource.get("name") == "cpu":
            return (resource.get(key) or {}).get("averageUtilization")
    return None


def _to_v1(obj: Object) -> Object:
    spec, status = obj.get("spec"), obj.get("status")
    if isinstance(spec, dict):
        cpu = _cpu_of(spec.pop("metrics", None), "target")
        spec.pop("behavior", None)
        if cpu is not None:
            spec["targetCPUUtilizationPercentage"] = cpu
    if isinstance(status, dict):
        cpu = _cpu_of(status.pop("currentMetrics", None), "current")
        status.pop("conditions", None)
        if cpu is not None:
            status["currentCPUUtilizationPercentage"] = cpu
    obj["apiVersion"] = _V1
    return obj


class HPAConverter:
    """The `Converter` of horizontalpodautoscalers."""

    async def convert(self, objs: list[Object], to_version: str) -> list[Object]:
        change = _to_v1 if to_version == "v1" else _to_v2
        return [change(o) if o.get("apiVersion") in (_V1, _V2) else o for o in objs]
