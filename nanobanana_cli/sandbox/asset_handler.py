"""The image host: serves finished jobs' files without auth, on its own origin like RunComfy's CDN."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from . import answers
from .api_handler import REQUEST_PATH
from .faults import Endpoint, Moment, fire
from .transport import PLAIN_TWIN, SandboxHandler

FILE_PATH = re.compile(r"^/files/(?P<id>[A-Za-z0-9_-]+)/(?P<index>\d+)\.\w+$")


class AssetHandler(SandboxHandler):
    def do_GET(self) -> None:
        self.begin()
        path = urlsplit(self.path).path
        mirrored = REQUEST_PATH.match(path)
        if mirrored and mirrored["action"] == "result":
            self._mirror_result(mirrored["id"])
            return
        match = FILE_PATH.match(path)
        found = self.sandbox.asset(match["id"], int(match["index"])) if match else None
        if found is None:
            self.answer_json(404, {"detail": "Not Found"})
            return
        # the plain twin of a TLS image host only exists as the downgrade target: no faults there
        self.endpoint = Endpoint.DOWNLOAD if self.server.listener != PLAIN_TWIN else None
        self.job, self.asset = found
        if not fire(Moment.DELIVERY, self):
            self.answer_bytes(200, self.asset.data, self.asset.content_type, {"Cache-Control": "public, max-age=604800"})

    def do_POST(self) -> None:
        self.begin()
        self.read_body()
        self.answer_json(405, {"detail": "Method Not Allowed"})

    def _mirror_result(self, request_id: str) -> None:
        """The target of the redirect-result fault: answers like the API, and records the headers
        it got, so a test sees whether the client carried its token across origins."""
        job = self.sandbox.find_job(request_id)
        if job is None:
            self.answer_json(404, {"detail": "Not Found"})
            return
        self.answer_json(200, answers.result(self.sandbox, job, time.monotonic(), include_cost=False))
