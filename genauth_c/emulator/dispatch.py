"""The API's request handler: knobs, authentication, and the eight endpoints.

Each request goes through the same steps, in this order:

1. ``reset_before_request`` (API paths): reset once the request line is read.
2. Read the body, record the request (:class:`RequestRecord`), ``delay``.
3. ``drop_connection`` / ``reset_after_request`` (API paths only).
4. The token endpoint answers here.
5. Gateway knobs, as a gateway in front of the API would act (before
   authentication, on every API path): ``fail_next_calls_with_401``,
   ``throttle_next_calls``, ``raw_body``, ``force_status``.
6. The endpoint from ``ROUTES`` (an unknown one: 404), authentication (token
   or signature), then the endpoint.
"""

from __future__ import annotations

import hmac
import urllib.parse
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .auth import AuthFailure
from .constants import (
    API_PREFIX,
    APICODE_BAD_ACCESS_KEY,
    APICODE_FORCED,
    APICODE_INVALID_ARGUMENT,
    APICODE_NOT_FOUND,
    APICODE_PAYLOAD_TOO_LARGE,
    APICODE_SUBSCRIBER_FAILED,
    APICODE_THROTTLED,
    APICODE_TOKEN_EXPIRED,
    APICODE_WEBHOOK_DISABLED,
    APICODE_WEBHOOK_NOT_FOUND,
    CREATE_PATH,
    DEFAULT_WEBHOOK_SECRET,
    DELETE_PATH,
    EVENTS_PATH,
    GET_PATH,
    LIST_PATH,
    LOGS_PATH,
    TOKEN_PATH,
    TRIGGER_PATH,
    UPDATE_PATH,
)
from .delivery import deliver
from .jsform import dumps, loads
from .records import RequestRecord
from .server import BaseHandler
from .store import EVENT_LIST, check_webhook_fields, parse_paging

if TYPE_CHECKING:
    from .app import Emulator

__all__ = ["ApiHandler", "ROUTES", "envelope"]


def envelope(status_code: int, message: str, api_code: int | None = None, data: Any = None) -> dict[str, Any]:
    """``{statusCode, message, apiCode?, requestId, data?}``."""
    env: dict[str, Any] = {"statusCode": status_code, "message": message}
    if api_code is not None:
        env["apiCode"] = api_code
    env["requestId"] = str(uuid.uuid4())
    if data is not None:
        env["data"] = data
    return env


def _query(target: str) -> dict[str, str]:
    # What requests and urllib send: percent-encoding, '+' for a space.
    return dict(urllib.parse.parse_qsl(target.partition("?")[2], keep_blank_values=True))


def _is_json_type(value: str | None) -> bool:
    # A media type, case-insensitive, with any parameters (charset=utf-8).
    return (value or "").partition(";")[0].strip().lower() == "application/json"


class ApiHandler(BaseHandler):
    """One connection to the emulator; ``self.emu`` is its :class:`Emulator`."""

    _record: RequestRecord
    _reset_instead = False

    @property
    def emu(self) -> Emulator:
        return cast("Emulator", self.server.owner)

    # -- answering ---------------------------------------------------------

    def answering(self, status: int) -> bool:
        if self._reset_instead:  # the request was carried out; its answer is lost
            self.reset()
            return False
        if getattr(self, "_record", None) is not None:
            self._record.status = status
        return True

    def send_json(self, http_status: int, payload: Any, extra_headers: list[tuple[str, str]] | None = None) -> None:
        self.write(http_status, dumps(payload), extra_headers=extra_headers)

    def error(self, http_status: int, status_code: int, message: str, api_code: int) -> None:
        self.send_json(http_status, envelope(status_code, message, api_code))

    def plain_error(self, status: int) -> None:
        # A body that cannot be read (a bad length, over MAX_BODY_BYTES):
        # the connection closes, but the answer is still a failure envelope,
        # with its apiCode and requestId, as every failure of the API is.
        self.close_connection = True
        if status == 413:
            self.error(413, 413, "request body too large", APICODE_PAYLOAD_TOO_LARGE)
        else:
            self.error(status, status, "request body cannot be read", APICODE_INVALID_ARGUMENT)

    def invalid(self, message: str) -> None:
        self.error(self.emu.invalid_argument_http_status, 400, message, APICODE_INVALID_ARGUMENT)

    def not_found(self, webhook_id: str) -> None:
        self.error(200, 404, f"Webhook {webhook_id} not found", APICODE_WEBHOOK_NOT_FOUND)

    def ok(self, data: Any) -> None:
        self.send_json(200, envelope(200, "Operation successful", data=data))

    # -- the steps ---------------------------------------------------------

    def reset_before_reading(self, request_line: bytes) -> bool:
        parts = request_line.split()
        path = parts[1].decode("latin-1").partition("?")[0] if len(parts) >= 2 else ""
        if path == TOKEN_PATH or not self.emu._take_knob("reset_before_request"):
            return False
        self.emu._count("connections_reset")
        return True

    def dispatch(self) -> None:
        emu = self.emu
        body = self.read_body()
        if body is None:
            return
        path = self.path.partition("?")[0]
        rec = RequestRecord(self.command, path, self.path, list(self.headers.items()), body)
        self._record = rec
        emu._add_record(rec)
        is_token = path == TOKEN_PATH
        wait = emu.delay_token if is_token else emu.delay
        if wait:
            emu._stopping.wait(wait)
        if not is_token:
            if emu._take_knob("drop_connection"):
                self.drop()
                return
            if emu._take_knob("reset_after_request"):
                emu._count("connections_reset")
                self._reset_instead = True
        parsed: Any = None
        if body.strip() and not _is_json_type(self.headers.get("Content-Type")):
            # The API's JSON body parser reads only what is declared JSON; any
            # other body reaches it as no body at all, and the request fails.
            # Here it fails by its name, so a client that sends JSON under
            # another type (or none) is caught by the emulator too.
            self.invalid(f"request body must be sent as application/json, not {self.headers.get('Content-Type')!r}")
            return
        if body.strip():
            try:
                parsed = loads(body)
            except ValueError as exc:  # includes UnicodeDecodeError
                self.invalid(f"request body is not valid JSON: {exc}")
                return
        if is_token and self.command != "POST":
            # The token endpoint is POST only (a GET with a JSON body issued
            # a token); like any route asked with another method, a 404.
            self.error(404, 404, f"Cannot {self.command} {path}", APICODE_NOT_FOUND)
            return
        if is_token:
            emu._count("token_fetches")
            self._token_endpoint(parsed)
            return
        if not path.startswith(API_PREFIX):
            self.error(404, 404, f"Cannot {self.command} {path}", APICODE_NOT_FOUND)
            return
        if self._gateway_knobs():
            return
        # A path no route serves is a 404 whoever asks, before authentication,
        # as an Express-style server's "Cannot POST ..." is: a 401 there would
        # blame the keys of a client whose host is wrong ('.../api/v3').
        route = ROUTES.get((self.command, path))
        if route is None:
            self.error(404, 404, f"Cannot {self.command} {path}", APICODE_NOT_FOUND)
            return
        args: Any = _query(self.path) if self.command == "GET" else ({} if parsed is None else parsed)
        try:
            emu._authenticator.check(rec, args if isinstance(args, dict) else None)
        except AuthFailure as failure:
            rec.auth_error = failure.api_code
            self.error(emu.auth_failure_http_status, 401, failure.message, failure.api_code)
            return
        if not isinstance(args, dict):
            self.invalid("request body must be a JSON object")
        else:
            route(self, args)

    def _gateway_knobs(self) -> bool:
        """Apply the knobs that act before authentication. True: answered."""
        emu = self.emu
        if emu._take_knob("fail_next_calls_with_401"):
            self._record.auth_error = APICODE_TOKEN_EXPIRED
            self.error(emu.auth_failure_http_status, 401, "token expired", APICODE_TOKEN_EXPIRED)
            return True
        if emu._take_knob("throttle_next_calls"):
            retry_after = emu.throttle_retry_after
            extra = [("Retry-After", str(retry_after))] if retry_after is not None else None
            self.send_json(emu.throttle_http_status, envelope(429, "Too many requests", APICODE_THROTTLED), extra)
            return True
        raw = emu.raw_body
        if raw is not None:
            self.write(emu.force_status if emu.force_status is not None else 200, bytes(raw), emu.raw_content_type)
            return True
        forced = emu.force_status
        if forced is not None and forced != 200:
            self.error(forced, forced, f"status {forced} forced by the emulator", APICODE_FORCED)
            return True
        return False

    # -- endpoints ---------------------------------------------------------

    def _token_endpoint(self, body: Any) -> None:
        emu = self.emu
        if not isinstance(body, dict):
            self.invalid("request body must be a JSON object")
            return
        ak, sk = body.get("accessKeyId"), body.get("accessKeySecret")
        if not isinstance(ak, str) or not isinstance(sk, str):
            self.invalid("accessKeyId and accessKeySecret must be strings")
            return
        # Both comparisons always run: no early exit that times the AK.
        ak_ok = hmac.compare_digest(ak.encode("utf-8", "surrogatepass"), emu.access_key_id.encode("utf-8"))
        sk_ok = hmac.compare_digest(sk.encode("utf-8", "surrogatepass"), emu.access_key_secret.encode("utf-8"))
        if not (ak_ok and sk_ok):
            self.send_json(200, envelope(401, "Invalid accessKeyId or accessKeySecret", APICODE_BAD_ACCESS_KEY))
            return
        token, lifetime = emu.issue_token()
        expires_in: int | float = int(lifetime) if float(lifetime).is_integer() else lifetime
        self.send_json(200, {"statusCode": 200, "message": "", "data": {"access_token": token, "expires_in": expires_in}})

    def _webhook_id(self, args: dict[str, Any]) -> str | None:
        webhook_id = args.get("webhookId")
        if not isinstance(webhook_id, str) or not webhook_id:
            self.invalid("webhookId must be a non-empty string")
            return None
        return webhook_id

    def _paging(self, args: dict[str, Any]) -> tuple[int, int] | None:
        try:
            return parse_paging(args.get("page"), args.get("limit"), query=self.command == "GET")
        except ValueError as exc:
            self.invalid(str(exc))
            return None

    def trigger_webhook(self, args: dict[str, Any]) -> None:
        """Deliver once; a disabled webhook is refused (422), nothing is sent."""
        emu = self.emu
        webhook_id = self._webhook_id(args)
        if webhook_id is None:
            return
        req_headers, req_body = args.get("requestHeaders"), args.get("requestBody")
        # null is taken as "not given", like an absent key.
        if req_headers is not None and not isinstance(req_headers, dict):
            self.invalid("requestHeaders must be an object")
            return
        if req_body is not None and not isinstance(req_body, dict):
            self.invalid("requestBody must be an object")
            return
        hook = emu.store.get(webhook_id)
        if hook is None:
            self.not_found(webhook_id)
            return
        if not hook["enabled"]:
            self.error(200, 422, f"Webhook {webhook_id} is disabled", APICODE_WEBHOOK_DISABLED)
            return
        try:
            outcome = deliver(
                hook, req_headers, req_body,
                userpool_id=emu.userpool_id, brand=emu.delivery_brand, timeout=emu.webhook_timeout,
            )
        except ValueError as exc:
            self.invalid(str(exc))
            return
        emu.store.log_delivery(outcome.log)
        if outcome.error is not None:
            self.error(200, 602, f"Request to the webhook URL failed: {outcome.detail}", APICODE_SUBSCRIBER_FAILED)
        else:
            self.ok({"response": outcome.answer})

    def create_webhook(self, args: dict[str, Any]) -> None:
        problem = check_webhook_fields(args, creating=True)
        if problem:
            self.invalid(problem)
        else:
            self.ok(self.emu.store.create(args, DEFAULT_WEBHOOK_SECRET))

    def update_webhook(self, args: dict[str, Any]) -> None:
        webhook_id = self._webhook_id(args)
        if webhook_id is None:
            return
        problem = check_webhook_fields(args, creating=False)
        if problem:
            self.invalid(problem)
            return
        hook = self.emu.store.update(webhook_id, args)
        if hook is None:
            self.not_found(webhook_id)
        else:
            self.ok(hook)

    def delete_webhook(self, args: dict[str, Any]) -> None:
        ids = args.get("webhookIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            self.invalid("webhookIds must be an array of strings")
            return
        self.emu.store.delete(ids)
        self.ok({"success": True})

    def get_webhook(self, args: dict[str, Any]) -> None:
        webhook_id = self._webhook_id(args)
        if webhook_id is None:
            return
        hook = self.emu.store.get(webhook_id)
        if hook is None:
            self.not_found(webhook_id)
        else:
            self.ok(hook)

    def list_webhooks(self, args: dict[str, Any]) -> None:
        paging = self._paging(args)
        if paging is not None:
            self.ok(self.emu.store.page(*paging))

    def get_webhook_logs(self, args: dict[str, Any]) -> None:
        """An unknown webhookId is not an error: its list is empty."""
        webhook_id = self._webhook_id(args)
        paging = self._paging(args) if webhook_id is not None else None
        if webhook_id is not None and paging is not None:
            self.ok(self.emu.store.logs_page(webhook_id, *paging))

    def get_webhook_event_list(self, args: dict[str, Any]) -> None:
        self.ok(EVENT_LIST)


ROUTES: dict[tuple[str, str], Callable[[ApiHandler, dict[str, Any]], None]] = {
    ("POST", TRIGGER_PATH): ApiHandler.trigger_webhook,
    ("POST", CREATE_PATH): ApiHandler.create_webhook,
    ("GET", LIST_PATH): ApiHandler.list_webhooks,
    ("GET", GET_PATH): ApiHandler.get_webhook,
    ("POST", UPDATE_PATH): ApiHandler.update_webhook,
    ("POST", DELETE_PATH): ApiHandler.delete_webhook,
    ("POST", LOGS_PATH): ApiHandler.get_webhook_logs,
    ("GET", EVENTS_PATH): ApiHandler.get_webhook_event_list,
}
