"""A tiny webhook subscriber on 127.0.0.1 that records what it gets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Union, cast

from .jsform import dumps
from .records import ReceivedRequest
from .server import BackgroundServer, BaseHandler

__all__ = ["WebhookReceiver"]

Answer = Union[bytes, Any, Callable[[ReceivedRequest], Any]]


class _ReceiverHandler(BaseHandler):
    def dispatch(self) -> None:
        rx = cast(WebhookReceiver, self.server.owner)
        body = self.read_body()
        if body is None:
            return
        # Header bytes come in as latin-1; deliveries send UTF-8.
        headers = [(n, v.encode("latin-1", "replace").decode("utf-8", "replace")) for n, v in self.headers.items()]
        got = ReceivedRequest(self.command, self.path, headers, body)
        with rx._cond:
            rx.received.append(got)
            rx._cond.notify_all()
        if rx.delay:
            rx._stopping.wait(rx.delay)
        answer = rx.answer_body
        if callable(answer):
            answer = answer(got)
        if answer is None:
            payload = got.json if isinstance(got.json, dict) else got.form
            answer = {"received": True, "eventName": payload.get("eventName")}
        data = answer if isinstance(answer, bytes) else dumps(answer)
        self.write(rx.answer_status, data, rx.answer_content_type)


class WebhookReceiver(BackgroundServer):
    """A webhook subscriber that records every request in ``received``.

    It answers ``{"received": true, "eventName": <from the body>}`` unless
    ``answer_body`` says otherwise: bytes (sent as is), any JSON value, or a
    callable taking the :class:`ReceivedRequest` and returning either.
    ``answer_status`` / ``answer_content_type`` / ``delay`` shape the answer.
    ``repr()`` shows its URL.
    """

    _handler_class = _ReceiverHandler
    _thread_name = "genauth-c-webhook-receiver"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        answer_body: Answer = None,
        answer_status: int = 200,
        answer_content_type: str = "application/json; charset=utf-8",
        delay: float = 0.0,
        verbose: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.answer_body = answer_body
        self.answer_status = answer_status
        self.answer_content_type = answer_content_type
        self.delay = delay
        self.verbose = verbose
        self.received: list[ReceivedRequest] = []
        self._cond = threading.Condition(threading.Lock())

    def _repr_fields(self) -> str:
        return f"received={len(self.received)}"

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.received) >= count, timeout)
