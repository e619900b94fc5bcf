"""A forwarding proxy in front of the test hub that loses answers on purpose.

Each ``POST /v1/messages`` that passes through is recorded (its body, byte for byte) and
handled as the plan says for that attempt (counted from 0):

* ``"pass"``: forwarded, and the hub's answer returned;
* ``"lose"``: forwarded (the hub commits), then the connection is dropped before any
  answer: what a client sees when a proxy times out or the network fails after the fact;
* ``"refuse-connection"``: dropped before the hub sees it;
* ``"503"``: answered 503 by the proxy itself, the hub never sees it.

Every other request is forwarded unchanged. Request signatures cover method, path, query
and content digest, not the host, so they verify through the proxy as they would direct.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["LossyProxy", "Plan"]

Plan = Callable[[int], Literal["pass", "lose", "refuse-connection", "503"]]
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class LossyProxy:
    def __init__(self, upstream: str, plan: Plan) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.submissions: list[bytes] = []
        self.answers: list[int] = []  # status of each submission's answer from the hub
        self._session: aiohttp.ClientSession | None = None
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> LossyProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        assert self._session is not None
        await self._server.close()
        await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        action = "pass"
        if request.method == "POST" and request.path == "/v1/messages":
            action = self.plan(len(self.submissions))
            self.submissions.append(body)
        if action == "refuse-connection":
            return self._drop(request)
        if action == "503":
            return web.Response(status=503, text="proxy: hub unavailable")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body if body else None,
        ) as upstream:
            answer = await upstream.read()
            status = upstream.status
            content_type = upstream.headers.get("Content-Type")
        if request.method == "POST" and request.path == "/v1/messages":
            self.answers.append(status)
        if action == "lose":
            return self._drop(request)
        response = web.Response(status=status, body=answer)
        if content_type is not None:
            response.headers["Content-Type"] = content_type
        return response

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        transport.abort()  # no answer at all: the client's read fails
        response = web.StreamResponse()
        response.force_close()
        return response
