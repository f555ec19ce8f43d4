"""Define API groups in Python: typed versions, conversion through a hub, admission, routers.

The public surface for plugin modules (see `configs/examples/hello_zeng_dev.py`).
"""
from kapi.admission.interfaces import ObjectReader
from kapi.admission.interfaces import Plugin as AdmissionPlugin
from kapi.api.attributes import AdmissionAttributes
from kapi.api.errors import Forbidden
from kapi.endpoints.connect import ConnectRequest
from kapi.plugins.api import APIGroup, Column, Connect, FieldError, Invalid, Plugin, Resource, Version
from kapi.plugins.apiexts import Objects, objects
from kapi.plugins.model import KubeObject, schema_from_model

__all__ = [
    "APIGroup", "AdmissionAttributes", "AdmissionPlugin", "Column", "Connect", "ConnectRequest", "FieldError",
    "Forbidden", "Invalid", "KubeObject", "ObjectReader", "Objects", "Plugin", "Resource", "Version", "objects",
    "schema_from_model",
]
