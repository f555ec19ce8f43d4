"""Where kapi keeps its PKI under `<file-rootpath>/cert/`: one definition for server and CLI."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CLIENT_USER = "kapi-admin"
DEFAULT_CLIENT_GROUPS = ("system:masters",)
# The front-proxy client certificate's CN: the name `--requestheader-allowed-names` lists (kubeadm's).
FRONT_PROXY_CLIENT_CN = "front-proxy-client"


@dataclass(frozen=True)
class CertPaths:
    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_crt(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    @property
    def client_crt(self) -> Path:
        return self.dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"

    @property
    def client_p12(self) -> Path:
        return self.dir / "client.p12"

    # The front proxy (kube's aggregation layer): its own CA, so that a certificate that may assert
    # any user through X-Remote-User headers is never one of the users' client certificates.
    @property
    def front_proxy_ca_crt(self) -> Path:
        return self.dir / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.dir / "front-proxy-ca.key"

    @property
    def front_proxy_client_crt(self) -> Path:
        return self.dir / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.dir / "front-proxy-client.key"
