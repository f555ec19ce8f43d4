"""Define API groups in Python: typed versions, conversion through a hub, admission, routers.

The public surface for plugin modules (see `configs/examples/hello_zeng_dev.py`).
"""
from server.admission.interfaces import ObjectReader
from server.admission.interfaces import Plugin as AdmissionPlugin
from server.api.attributes import AdmissionAttributes
from server.api.errors import Forbidden
from server.endpoints.connect import ConnectRequest
from server.plugins.api import APIGroup, Column, Connect, FieldError, Invalid, Plugin, Resource, Version
from server.plugins.apiexts import Objects, objects
from server.plugins.model import KubeObject, schema_from_model

__all__ = [
    "APIGroup", "AdmissionAttributes", "AdmissionPlugin", "Column", "Connect", "ConnectRequest", "FieldError",
    "Forbidden", "Invalid", "KubeObject", "ObjectReader", "Objects", "Plugin", "Resource", "Version", "objects",
    "schema_from_model",
]
