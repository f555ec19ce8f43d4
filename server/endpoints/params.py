"""Query parameters of resource requests, checked once with kube's wording for bad values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from kapi.api import errors
from kapi.api.errors import go_quote
from kapi.api.duration import parse_duration
from kapi.api.field_selectors import parse_field_selector
from kapi.api.selectors import parse_label_selector
from kapi.registry.listing import ListOptions, validate_list_options
from kapi.scheme.definitions import ResourceDef

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
    force: bool | None = None  # server-side apply only
    dry_run_values: tuple[str, ...] = ()  # checked by the write verbs only: kube ignores dryRun on reads


def _bool(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


_NO_QUERY = QueryOptions()


_OPTIONS_KINDS = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def parse_query(params: Mapping[str, str], method: str = "GET") -> QueryOptions:
    """Parse the parameters kapi honours; unknown ones are ignored like kube-apiserver does.

    fieldValidation is checked as part of the write's Create-, Update- or PatchOptions (a 422); reads
    ignore it, as kube does.
    """
    if not params:
        return _NO_QUERY  # most requests carry none
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
    field_validation = params.get("fieldValidation") or "Warn"
    if field_validation not in _FIELD_VALIDATION:
        if method in _OPTIONS_KINDS:
            raise errors.invalid("meta.k8s.io", _OPTIONS_KINDS[method], "", [errors.field_not_supported(
                "fieldValidation", field_validation, ["", *sorted(_FIELD_VALIDATION)])])
        field_validation = "Warn"
    include_object = params.get("includeObject") or "Metadata"
    if include_object not in _INCLUDE_OBJECT:
        raise errors.BadRequest(
            f"Unable to convert to Table as requested: includeObject: Invalid value: {go_quote(include_object)}: "
            "must be 'Metadata', 'Object', 'None', or empty")
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
        dry_run_values=tuple(dry_run_values),
        field_validation=field_validation,
        field_manager=field_manager,
        include_object=include_object,
        timeout=timeout,
        watch=_bool(params.get("watch", "")),
        force=_optional_bool(params, "force"),
    )


_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions", "DELETE": "DeleteOptions"}


def check_dry_run(values: Sequence[str], method: str) -> None:
    """422 for a dryRun other than All, worded for the verb's options kind as kube words it."""
    if any(v != "All" for v in values):
        shown = "[" + ",".join(errors.go_quote(v) for v in values) + "]"
        raise errors.invalid("meta.k8s.io", _OPTIONS_KIND.get(method, "CreateOptions"), "", [errors.Cause(
            "FieldValueNotSupported", f'Unsupported value: {shown}: supported values: "All"', "dryRun")])


def _optional_bool(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise errors.BadRequest(f'invalid value for {name}: "{raw}": must be true or false')


def parse_list_options(params: Mapping[str, str], definition: ResourceDef, watch: bool,
                       limit: int = 0, continue_token: str = "") -> ListOptions:
    """Selectors, resourceVersion semantics and watch settings of a list, watch or deletecollection.

    A compiled kind without field label conversions of its own answers an unknown field with
    DefaultMetaV1FieldSelectorConversion's "not a known field selector"; the others say "not supported".
    """
    timeout_seconds = None
    if params.get("timeoutSeconds"):
        try:
            timeout_seconds = float(int(params["timeoutSeconds"]))
        except ValueError:
            raise errors.BadRequest(
                f'invalid value for timeoutSeconds: "{params["timeoutSeconds"]}": must be an integer') from None
    opts = ListOptions(
        label_selector=parse_label_selector(params.get("labelSelector") or ""),
        field_selector=parse_field_selector(
            params.get("fieldSelector") or "", definition.selectable_fields,
            wording="not-known" if definition.builtin and not definition.extra_selectable_fields else "not-supported"),
        limit=0 if watch else limit,
        continue_token=continue_token,
        resource_version=params.get("resourceVersion") or "",
        resource_version_match=params.get("resourceVersionMatch") or "",
        timeout_seconds=timeout_seconds,
        allow_bookmarks=bool(_optional_bool(params, "allowWatchBookmarks")),
        send_initial_events=_optional_bool(params, "sendInitialEvents"),
    )
    validate_list_options(opts, watch)
    return opts
