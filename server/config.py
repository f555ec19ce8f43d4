"""`ServerConfig`: every server setting's one home, frozen once the server starts."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024


def shipped_resources_dir() -> Path:
    """The example CRD manifests shipped in the `configs` package."""
    return Path(str(resources.files("configs") / "resources"))


@dataclass(frozen=True)
class ServerConfig:
    backend: str = "file"
    file_rootpath: Path = field(default_factory=lambda: Path("/tmp/kapi"))
    bind_address: str = "127.0.0.1"
    insecure_port: int = 6080
    resource_dirs: tuple[Path, ...] = ()
    load_examples: bool = True
    request_timeout: float = 60.0
    unrestricted_update: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def definition_dirs(self) -> tuple[Path, ...]:
        """Where CRD manifests are read from at start-up, shipped examples first."""
        return ((shipped_resources_dir(),) if self.load_examples else ()) + self.resource_dirs

    @property
    def server_address(self) -> str:
        return f"{self.bind_address}:{self.insecure_port}"
