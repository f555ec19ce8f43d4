"""`kapi start`'s aggregation flags, named as kube's: serving certificate files, request-header
authentication, delegation to a main server, and the aggregator's front-proxy client certificate."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import typer

from kapi.api.duration import parse_duration
from kapi.auth.delegated import DEFAULT_ALWAYS_ALLOW_PATHS, check_always_allow_paths
from kapi.auth.main_server import IN_CLUSTER
from kapi.auth.request_header import DEFAULT_EXTRA_PREFIXES, DEFAULT_GROUP_HEADERS, DEFAULT_USERNAME_HEADERS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class AggregationFlags:
    tls_cert_file: Optional[Path] = None
    tls_private_key_file: Optional[Path] = None
    requestheader_client_ca_file: Optional[Path] = None
    requestheader_allowed_names: str = ""
    requestheader_username_headers: str = ",".join(DEFAULT_USERNAME_HEADERS)
    requestheader_group_headers: str = ",".join(DEFAULT_GROUP_HEADERS)
    requestheader_extra_headers_prefix: str = ",".join(DEFAULT_EXTRA_PREFIXES)
    authentication_kubeconfig: str = ""
    authorization_kubeconfig: str = ""
    authentication_token_webhook_cache_ttl: str = "10s"
    authorization_webhook_cache_authorized_ttl: str = "10s"
    authorization_webhook_cache_unauthorized_ttl: str = "10s"
    authorization_always_allow_paths: str = ",".join(DEFAULT_ALWAYS_ALLOW_PATHS)
    proxy_client_cert_file: Optional[Path] = None
    proxy_client_key_file: Optional[Path] = None
    apiservice_check_interval: str = "10s"

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set, after checking files, pairs and durations."""
        for cert, key, hint in ((self.tls_cert_file, self.tls_private_key_file, "--tls-cert-file"),
                                (self.proxy_client_cert_file, self.proxy_client_key_file, "--proxy-client-cert-file")):
            if (cert is None) != (key is None):
                raise typer.BadParameter("the certificate and its key go together", param_hint=hint)
        files = {}
        for name in ("tls_cert_file", "tls_private_key_file", "requestheader_client_ca_file",
                     "proxy_client_cert_file", "proxy_client_key_file"):
            path = getattr(self, name)
            if path is not None and not path.expanduser().is_file():
                raise typer.BadParameter(f"{path} is not a file", param_hint="--" + name.replace("_", "-"))
            files[name] = path.expanduser().resolve() if path is not None else None
        for name in ("authentication_kubeconfig", "authorization_kubeconfig"):
            where = getattr(self, name)
            if where and where != IN_CLUSTER and not Path(where).expanduser().is_file():
                raise typer.BadParameter(f"{where} is neither a file nor {IN_CLUSTER!r}",
                                         param_hint="--" + name.replace("_", "-"))
        try:
            paths = check_always_allow_paths(_csv(self.authorization_always_allow_paths))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--authorization-always-allow-paths") from None
        return {
            **files,
            "requestheader_allowed_names": _csv(self.requestheader_allowed_names),
            "requestheader_username_headers": _csv(self.requestheader_username_headers),
            "requestheader_group_headers": _csv(self.requestheader_group_headers),
            "requestheader_extra_headers_prefix": _csv(self.requestheader_extra_headers_prefix),
            "authentication_kubeconfig": self._kubeconfig(self.authentication_kubeconfig),
            "authorization_kubeconfig": self._kubeconfig(self.authorization_kubeconfig),
            "authentication_token_webhook_cache_ttl": self._seconds("authentication_token_webhook_cache_ttl"),
            "authorization_webhook_cache_authorized_ttl": self._seconds("authorization_webhook_cache_authorized_ttl"),
            "authorization_webhook_cache_unauthorized_ttl": self._seconds(
                "authorization_webhook_cache_unauthorized_ttl"),
            "authorization_always_allow_paths": paths,
            "apiservice_check_interval": max(self._seconds("apiservice_check_interval"), 0.1),
        }

    @staticmethod
    def _kubeconfig(where: str) -> str:
        return where if where in ("", IN_CLUSTER) else str(Path(where).expanduser().resolve())

    def _seconds(self, name: str) -> float:
        text = getattr(self, name)
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--" + name.replace("_", "-")) from None
        if seconds < 0:
            raise typer.BadParameter(f"{text!r} is negative", param_hint="--" + name.replace("_", "-"))
        return seconds

    def args(self) -> list[str]:
        """The same flags for a detached child process (only those that differ from the defaults)."""
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default and value is not None:
                out += ["--" + f.name.replace("_", "-"), str(value)]
        return out


def aggregation_flags_of(config: object) -> AggregationFlags:
    """The flags that rebuild a ServerConfig's aggregation settings (for `kapi start --detach`)."""
    def csv(name: str) -> str:
        return ",".join(getattr(config, name))

    def duration(name: str) -> str:
        return f"{getattr(config, name)!r}s"

    return AggregationFlags(
        tls_cert_file=getattr(config, "tls_cert_file"), tls_private_key_file=getattr(config, "tls_private_key_file"),
        requestheader_client_ca_file=getattr(config, "requestheader_client_ca_file"),
        requestheader_allowed_names=csv("requestheader_allowed_names"),
        requestheader_username_headers=csv("requestheader_username_headers"),
        requestheader_group_headers=csv("requestheader_group_headers"),
        requestheader_extra_headers_prefix=csv("requestheader_extra_headers_prefix"),
        authentication_kubeconfig=getattr(config, "authentication_kubeconfig"),
        authorization_kubeconfig=getattr(config, "authorization_kubeconfig"),
        authentication_token_webhook_cache_ttl=duration("authentication_token_webhook_cache_ttl"),
        authorization_webhook_cache_authorized_ttl=duration("authorization_webhook_cache_authorized_ttl"),
        authorization_webhook_cache_unauthorized_ttl=duration("authorization_webhook_cache_unauthorized_ttl"),
        authorization_always_allow_paths=csv("authorization_always_allow_paths"),
        proxy_client_cert_file=getattr(config, "proxy_client_cert_file"),
        proxy_client_key_file=getattr(config, "proxy_client_key_file"),
        apiservice_check_interval=duration("apiservice_check_interval"),
    )
