"""kapi's API server, installed as the `kapi` package (the repository keeps it in `server/`).

What plugin authors and tests may import is listed once, here; everything else is internal and
may change between releases. tests/unit/test_public_api.py holds each module to its list.
"""

PUBLIC_API: dict[str, tuple[str, ...]] = {
    # Define API groups in Python: `kapi start --plugin module` (the README's "API groups in Python").
    "kapi.plugins": (
        "APIGroup", "AdmissionAttributes", "AdmissionPlugin", "Column", "Connect", "ConnectRequest",
        "FieldError", "Forbidden", "Invalid", "KubeObject", "ObjectReader", "Objects", "Plugin", "Resource",
        "Version", "objects", "schema_from_model",
    ),
    # Start servers from tests; kapi_cli.pytest_plugin's fixtures build on it.
    "kapi.testing": (
        "FaultInjector", "KapiStartError", "LogicalCluster", "RunningServer", "start_server", "write_kubeconfig",
    ),
}
