"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook (placeholder: being written)."""
from __future__ import annotations

from server.admission.interfaces import ObjectReader, Plugin


class MutatingAdmissionWebhook(Plugin):
    name = "MutatingAdmissionWebhook"

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader


class ValidatingAdmissionWebhook(Plugin):
    name = "ValidatingAdmissionWebhook"

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader
