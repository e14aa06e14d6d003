"""A local GenAuth V3 management API emulator for genauth-c's tests and demo.

The emulator is a real HTTP/1.1 server (keep-alive, Content-Length on every
answer) bound to 127.0.0.1, standard library only. It speaks the webhook API
with both authentication schemes and both brands:

* ``POST /api/v3/get-management-token`` issues HS256 JWTs whose payload holds
  ``scoped_userpool_id``. With the default user pool id the payload encodes
  the same in base64 and base64url, without padding, so the official Python
  SDK (which decodes it as plain base64) works; ``URLSAFE_USERPOOL_ID`` gives
  a payload only base64url decodes.
* Every other ``/api/v3/*`` endpoint accepts either ``authorization: Bearer
  <token>`` plus ``x-genauth-userpool-id`` / ``x-authing-userpool-id``, or an
  AK/SK HMAC-SHA1 request signature (scheme word ``authing`` with
  ``x-authing-*`` headers, or ``GenAuth`` with ``x-genauth-*`` headers); a
  GET's signature covers its decoded query parameters.
* The eight webhook endpoints: create (a new id, ISO times), list (page from
  1, limit 1-50, ``totalCount``), get (unknown id: a 404 envelope), update
  (only the fields given), delete (unknown ids ignored), get-webhook-logs
  (newest first, paginated), get-webhook-event-list, and trigger-webhook,
  which really POSTs to the webhook's URL and returns the subscriber's
  answer in ``data.response``; every delivery is logged, failed ones too.

The parts: ``app`` (the :class:`Emulator`, its knobs and records),
``dispatch`` (the request handler and the endpoints), ``store`` (webhooks,
logs, paging), ``auth`` (tokens, signatures), ``delivery`` (the POST to a
subscriber), ``jsform`` (JSON as JavaScript prints it), ``server`` (HTTP
plumbing), ``receiver`` (:class:`WebhookReceiver`), ``records`` (what the
emulator and the receiver saw), ``constants`` (paths, defaults, the apiCodes
below), ``cli``.

Choices the reference leaves UNKNOWN, made here and kept stable for tests:

============================  ============  =======  =============================
situation                     HTTP status   status   apiCode
============================  ============  =======  =============================
invalid argument / bad JSON   200 (knob)    400      1000
body not sent as JSON         200 (knob)    400      1000
unreadable body length        400           400      1000 (connection closed)
body over 64 MiB              413           413      1413 (connection closed)
wrong AK/SK at token endpoint 200           401      1310
no/unknown Bearer token       401 (knob)    401      1020 missing, 1021 invalid
expired token                 401 (knob)    401      1022
user pool header bad/missing  401 (knob)    401      1023
signature: bad signature      401 (knob)    401      1300
signature: malformed headers  401 (knob)    401      1301 (no nonce, bad header)
signature: unknown AK         401 (knob)    401      1302
signature: method/version     401 (knob)    401      1303
signature: missing date       401 (knob)    401      1304
signature: clock skew         401 (knob)    401      1305
signature: nonce reused       401 (knob)    401      1306
throttled (knob)              429 (knob)    429      1429
forced (force_status knob)    the knob's    same     1999
unknown webhook id            200           404      2404
disabled webhook triggered    200           422      2422 (nothing delivered)
subscriber unreachable        200           602      6020
unknown endpoint              404           404      1404
============================  ============  =======  =============================

``602`` ("response from a third-party endpoint failed") is used for an
unreachable or timed-out subscriber: from the caller's point of view it is the
subscriber's answer that never came. A subscriber that answers with an HTTP
error status still yields ``statusCode 200``: the webhook was triggered, and
what the subscriber said is in ``data.response``.

Run standalone (``--help`` shows every option and its default)::

    python -m genauth_c.emulator --port 8080 --webhook ID=http://127.0.0.1:9000/hook
"""

from __future__ import annotations

from .app import Emulator
from .auth import (
    BRAND_SCHEME,
    SIGNATURE_SCHEMES,
    b64url_decode,
    b64url_encode,
    canonical_headers,
    canonical_resource,
    sign,
    signed_headers,
    string_to_sign,
)
from .cli import main
from .constants import *  # noqa: F403 (the paths, defaults and apiCodes)
from .constants import (
    DEFAULT_EVENT,
    DEFAULT_USERPOOL_ID,
    DEFAULT_WEBHOOK_SECRET,
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    TOKEN_PATH,
    TRIGGER_PATH,
    URLSAFE_USERPOOL_ID,
)
from .delivery import error_code
from .jsform import dumps, js_number, js_string, js_stringify, loads
from .records import ReceivedRequest, RequestRecord
from .receiver import WebhookReceiver
from .store import EVENT_LIST

__all__ = [
    "Emulator",
    "WebhookReceiver",
    "RequestRecord",
    "ReceivedRequest",
    "js_number",
    "js_stringify",
    "js_string",
    "loads",
    "dumps",
    "canonical_headers",
    "canonical_resource",
    "string_to_sign",
    "sign",
    "signed_headers",
    "b64url_encode",
    "b64url_decode",
    "error_code",
    "BRAND_SCHEME",
    "SIGNATURE_SCHEMES",
    "DEFAULT_USERPOOL_ID",
    "URLSAFE_USERPOOL_ID",
    "DEFAULT_WEBHOOK_SECRET",
    "DEFAULT_EVENT",
    "EVENT_LIST",
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "TOKEN_PATH",
    "TRIGGER_PATH",
    "main",
]
