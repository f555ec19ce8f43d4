"""JenkinsServiceLimit: at most ten JenkinsService objects in the whole server.

The example admission plugin that reads other objects: it counts the stored
JenkinsServices through the registry (kube's listers) and refuses the create
that would exceed the limit with 403 Forbidden, as kube's ResourceQuota does.
"""
from __future__ import annotations

from kapi.admission.interfaces import ObjectReader, Plugin
from kapi.api.attributes import AdmissionAttributes
from kapi.api.errors import Forbidden, QualifiedKind

GROUP, RESOURCE = "autobusi.group.cicd", "jenkinsservices"
DEFAULT_LIMIT = 10


class JenkinsServiceLimit(Plugin):
    name = "JenkinsServiceLimit"

    def __init__(self, reader: ObjectReader, limit: int = DEFAULT_LIMIT) -> None:
        self._reader, self._limit = reader, limit

    async def validate(self, attributes: AdmissionAttributes) -> None:
        if attributes.operation != "CREATE" or (attributes.group, attributes.resource) != (GROUP, RESOURCE):
            return
        existing = await self._reader.count(GROUP, RESOURCE)
        if existing >= self._limit:
            raise Forbidden(
                f'{RESOURCE}.{GROUP} "{attributes.name}" is forbidden: JenkinsServiceLimit: at most '
                f"{self._limit} JenkinsService objects may exist in this server ({existing} exist)",
                details=QualifiedKind(name=attributes.name, group=GROUP, kind=RESOURCE),
            )
