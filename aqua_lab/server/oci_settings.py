"""``platforms/oci/settings`` and ``platforms/oci/check``: the OCI configuration chosen in the sidebar.

PUT saves it owner-only under the Jupyter data dir, where :meth:`.app.AquaLab.service` reads it on
the next OCI request; POST check builds the platform from a choice and tries one cheap call off the
event loop, answering which field is wrong.
"""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, Field
from tornado import web

from ..service import OciChoice, check_oci_choice, choice_path, save_oci_choice, saved_oci_choice
from .handlers import AquaLabHandler


class OciSettings(BaseModel):
    choice: OciChoice = Field(description="what the user saved (empty fields: the server's configuration)")
    path: str = Field(description="the file it is kept in (owner-only)")
    server: dict[str, str] = Field(description="what the server was started with (c.AquaLab.*), where set")


class OciSettingsHandler(AquaLabHandler):
    def view(self) -> OciSettings:
        base = self.extensionapp.platform_settings()
        server = {name: value for name in OciChoice().as_settings(every=True) if (value := getattr(base, name))}
        return OciSettings(choice=saved_oci_choice(), path=str(choice_path()), server=server)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(self.view())

    @web.authenticated
    @authorized
    async def put(self) -> None:
        save_oci_choice(self.read(OciChoice))
        self.reply(self.view())


class OciCheckHandler(AquaLabHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        choice = self.read(OciChoice)
        base = self.extensionapp.platform_settings()
        self.reply(await asyncio.to_thread(check_oci_choice, choice, base))
