"""REST for a deployment's model-group versions: ``GET deployments/{id}/versions`` and
``POST deployments/{id}/rollback`` (only parse and reply; the service does the work)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..domain import ModelGroupVersion, RollbackRequest
from .handlers import AquaLabHandler
from .models import DataList


class DeploymentVersions(AquaLabHandler):
    @web.authenticated
    @authorized
    async def get(self, deployment_id: str) -> None:
        self.reply(DataList[ModelGroupVersion](data=await self.service().deployment_versions(deployment_id)))


class Rollback(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self, deployment_id: str) -> None:
        request = self.read(RollbackRequest)
        self.reply(await self.service().rollback(deployment_id, request.version))
