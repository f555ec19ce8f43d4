"""Query parameters of resource requests, checked once with kube's wording for bad values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from server.api import errors
from server.api.duration import parse_duration

_FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
_INCLUDE_OBJECT = ("None", "Metadata", "Object")


@dataclass(frozen=True)
class QueryOptions:
    limit: int = 0
    continue_token: str = ""
    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str = ""
    include_object: str = "Metadata"
    timeout: float | None = None
    watch: bool = False


def _bool(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


def parse_query(params: Mapping[str, str]) -> QueryOptions:
    """Parse the parameters kapi honours; unknown ones are ignored like kube-apiserver does."""
    limit = 0
    if params.get("limit"):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise errors.BadRequest(f'invalid value for limit: "{params["limit"]}": must be an integer') from None
        if limit < 0:
            limit = 0
    dry_run_values = params.getlist("dryRun") if hasattr(params, "getlist") else (
        [params["dryRun"]] if "dryRun" in params else [])
    for value in dry_run_values:
        if value != "All":
            raise errors.BadRequest(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    field_validation = params.get("fieldValidation") or "Warn"
    if field_validation not in _FIELD_VALIDATION:
        raise errors.BadRequest(
            f'fieldValidation: Unsupported value: "{field_validation}": supported values: "Ignore", "Strict", "Warn"'
        )
    include_object = params.get("includeObject") or "Metadata"
    if include_object not in _INCLUDE_OBJECT:
        raise errors.BadRequest(
            f'includeObject: Unsupported value: "{include_object}": supported values: "None", "Metadata", "Object"'
        )
    field_manager = params.get("fieldManager") or ""
    if len(field_manager) > 128:
        raise errors.BadRequest("fieldManager: Too long: may not be longer than 128")
    timeout = None
    if params.get("timeout"):
        try:
            timeout = parse_duration(params["timeout"])
        except ValueError:
            raise errors.BadRequest(f'invalid value for timeout: "{params["timeout"]}"') from None
    return QueryOptions(
        limit=limit,
        continue_token=params.get("continue") or "",
        dry_run=bool(dry_run_values),
        field_validation=field_validation,
        field_manager=field_manager,
        include_object=include_object,
        timeout=timeout,
        watch=_bool(params.get("watch", "")),
    )
