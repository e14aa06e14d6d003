"""The Emulator: configuration, fault knobs, records, and the webhook store."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .auth import Authenticator, TokenBook
from .constants import DEFAULT_USERPOOL_ID, DEFAULT_WEBHOOK_SECRET, JSON_CONTENT_TYPE
from .dispatch import ApiHandler
from .records import RequestRecord
from .server import BackgroundServer
from .store import WebhookStore

__all__ = ["Emulator"]

# Knobs that count down: an int N acts on the next N requests; True on all.
_COUNT_KNOBS = (
    "drop_connection",
    "fail_next_calls_with_401",
    "throttle_next_calls",
    "reset_before_request",
    "reset_after_request",
)


class Emulator(BackgroundServer):
    """An in-process GenAuth V3 management API on 127.0.0.1.

    Example::

        with Emulator("AK", "SK") as emu, WebhookReceiver() as rx:
            emu.add_webhook("wh1", rx.url + "/hook")
            ...  # point a client at emu.url

    ``repr(emu)`` shows its URL. Webhooks come from :meth:`add_webhook` or the
    create-webhook endpoint; triggering a **disabled** webhook delivers
    nothing and answers ``statusCode`` 422 (apiCode 2422), since a disabled
    subscription is one its owner asked not to receive.

    Knobs (plain attributes, read on every request, settable at any time).
    "API request" means every ``/api/v3/*`` request but the token endpoint.
    The count knobs take an int N (the next N API requests; they count down
    to 0) or True (every one):

    ``delay`` / ``delay_token``
        seconds to wait before answering an API request / the token endpoint.
    ``drop_connection``
        close the connection without answering (a FIN), once the request is
        read and recorded; the request is not carried out.
    ``reset_before_request``
        reset the connection (TCP RST) as soon as the request line is read:
        nothing is recorded or carried out, so a retry is safe.
    ``reset_after_request``
        read, record and carry out the request (a trigger really delivers),
        then reset the connection instead of answering: for "never deliver
        twice" tests.
    ``fail_next_calls_with_401``
        answer with a token-expired 401 (apiCode 1022), whatever the token.
    ``throttle_next_calls``
        answer with envelope ``statusCode`` 429 (apiCode 1429), HTTP status
        ``throttle_http_status`` (default 429; 200 gives the envelope alone)
        and a ``Retry-After: <throttle_retry_after>`` header unless that is
        None (the default).
    ``force_status``
        HTTP status and envelope ``statusCode`` for API requests; None or 200
        means normal processing.
    ``raw_body``
        bytes answered to API requests instead of JSON (HTTP status
        ``force_status`` or 200, content type ``raw_content_type``).

    ``fail_next_calls_with_401``, ``throttle_next_calls``, ``raw_body`` and
    ``force_status`` act before authentication, as a gateway in front of the
    API would, so raw http.client tests need no credentials to use them.

    Tokens: ``token_lifetime`` (seconds, float) is a new token's life and its
    ``expires_in``. For deterministic expiry, ``token_max_uses`` (None or N)
    makes each token issued while it is set valid for N API calls, and
    :meth:`expire_tokens` expires every token issued so far, now or after N
    more calls. ``auth_failure_http_status`` (default 401) is the HTTP status
    of authentication failures (the envelope says 401 either way);
    ``invalid_argument_http_status`` (default 200) that of statusCode-400
    envelopes; ``signature_max_skew`` the seconds a signed request's ``date``
    may be off (None: unchecked). Deliveries: ``webhook_timeout`` seconds,
    ``delivery_brand`` ``"authing"`` (``x-authing-*`` headers) or ``"genauth"``.
    ``idle_timeout`` (default 60) the seconds a connection may send nothing
    before it is closed.

    Records: ``requests`` (:class:`RequestRecord` list), ``webhook_logs``
    (every delivery's WebhookLogDto, oldest first), :meth:`delivery_count` /
    :meth:`delivery_counts` (attempts per webhook, failed ones too),
    ``connection_count``, ``token_fetches``, ``connections_reset``;
    :meth:`reset_records` clears them.
    """

    _handler_class = ApiHandler
    _thread_name = "genauth-c-emulator"

    def __init__(
        self,
        access_key_id: str = "AK",
        access_key_secret: str = "SK",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 7200,
        userpool_id: str = DEFAULT_USERPOOL_ID,
        auth_failure_http_status: int = 401,
        invalid_argument_http_status: int = 200,
        signature_max_skew: float | None = 900.0,
        webhook_timeout: float = 5.0,
        delivery_brand: str = "authing",
        verbose: bool = False,
    ) -> None:
        super().__init__(host, port)
        if delivery_brand not in ("authing", "genauth"):
            raise ValueError("delivery_brand must be 'authing' or 'genauth'")
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.userpool_id = userpool_id
        self.token_lifetime = token_lifetime
        self.token_max_uses: int | None = None
        self.auth_failure_http_status = auth_failure_http_status
        self.invalid_argument_http_status = invalid_argument_http_status
        self.signature_max_skew = signature_max_skew
        self.webhook_timeout = webhook_timeout
        self.delivery_brand = delivery_brand
        self.verbose = verbose
        # knobs
        self.delay: float = 0.0
        self.delay_token: float = 0.0
        self.force_status: int | None = None
        self.raw_body: bytes | None = None
        self.raw_content_type = "text/html; charset=utf-8"
        self.drop_connection: bool | int = False
        self.fail_next_calls_with_401: bool | int = 0
        self.throttle_next_calls: bool | int = 0
        self.throttle_http_status = 429
        self.throttle_retry_after: int | float | str | None = None
        self.reset_before_request: bool | int = 0
        self.reset_after_request: bool | int = 0
        # state
        self._lock = threading.RLock()
        self.store = WebhookStore()
        self._tokens = TokenBook()
        self._authenticator = Authenticator(self, self._tokens)
        # records
        self.connection_count = 0
        self.token_fetches = 0
        self.connections_reset = 0
        self.requests: list[RequestRecord] = []

    def _repr_fields(self) -> str:
        return f"access_key_id={self.access_key_id!r} webhooks={self.store.page(1, 1)['totalCount']}"

    # -- records and knobs -------------------------------------------------

    @property
    def webhook_logs(self) -> list[dict[str, Any]]:
        """Every delivery's WebhookLogDto, oldest first (the live list)."""
        return self.store.logs

    def delivery_count(self, webhook_id: str) -> int:
        """Deliveries attempted to this webhook (failed ones too) since the last reset_records()."""
        return self.store.delivery_count(webhook_id)

    def delivery_counts(self) -> dict[str, int]:
        """webhookId -> deliveries attempted, since the last reset_records()."""
        return self.store.delivery_counts()

    def _on_connection(self) -> None:
        self._count("connection_count")

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def _add_record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def reset_records(self) -> None:
        """Clear requests, webhook logs, delivery counts and the counters."""
        with self._lock:
            self.requests = []
            self.connection_count = 0
            self.token_fetches = 0
            self.connections_reset = 0
        self.store.clear_records()

    def _take_knob(self, name: str) -> bool:
        """Consume one unit of a count knob (True means "always")."""
        assert name in _COUNT_KNOBS, name
        with self._lock:
            value = getattr(self, name)
            if value is True:
                return True
            if not value:
                return False
            setattr(self, name, int(value) - 1)
            return True

    # -- tokens ------------------------------------------------------------

    def issue_token(self) -> tuple[str, float]:
        """Issue a management token as the token endpoint does: (jwt, lifetime)."""
        lifetime = float(self.token_lifetime)
        return self._tokens.issue(self.userpool_id, lifetime, self.token_max_uses), lifetime

    def expire_tokens(self, after_calls: int = 0) -> None:
        """Expire every token issued so far: now, or after ``after_calls`` more API calls each."""
        self._tokens.expire(after_calls)

    # -- webhooks ----------------------------------------------------------

    def add_webhook(
        self,
        webhook_id: str,
        url: str,
        content_type: str = JSON_CONTENT_TYPE,
        secret: str | None = DEFAULT_WEBHOOK_SECRET,
        *,
        name: str | None = None,
        events: Iterable[str] | None = None,
        enabled: bool = True,
        retry_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register (or replace) a webhook; returns its WebhookDto. ``secret=None``: none sent."""
        return self.store.add(
            webhook_id, url, content_type, secret, name=name, events=events, enabled=enabled, retry_config=retry_config
        )

    def get_webhook(self, webhook_id: str) -> dict[str, Any] | None:
        """A copy of the webhook's WebhookDto, or None."""
        return self.store.get(webhook_id)
