"""Paths, defaults and the envelope codes the emulator answers with.

The reference leaves most ``apiCode`` values UNKNOWN; the ones here are the
emulator's choices, kept stable so that tests can assert on them. The table
in the package docstring lists which situation yields which code.
"""

from __future__ import annotations

__all__ = [
    "TOKEN_PATH",
    "TRIGGER_PATH",
    "CREATE_PATH",
    "UPDATE_PATH",
    "DELETE_PATH",
    "GET_PATH",
    "LIST_PATH",
    "LOGS_PATH",
    "EVENTS_PATH",
    "API_PREFIX",
    "DEFAULT_USERPOOL_ID",
    "URLSAFE_USERPOOL_ID",
    "DEFAULT_WEBHOOK_SECRET",
    "DEFAULT_EVENT",
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "MAX_BODY_BYTES",
    "MAX_PAGE_LIMIT",
    "DEFAULT_PAGE_LIMIT",
    "APICODE_INVALID_ARGUMENT",
    "APICODE_TOKEN_MISSING",
    "APICODE_TOKEN_INVALID",
    "APICODE_TOKEN_EXPIRED",
    "APICODE_USERPOOL_MISMATCH",
    "APICODE_SIGNATURE_INVALID",
    "APICODE_SIGNATURE_MALFORMED",
    "APICODE_SIGNATURE_UNKNOWN_KEY",
    "APICODE_SIGNATURE_UNSUPPORTED",
    "APICODE_SIGNATURE_NO_DATE",
    "APICODE_SIGNATURE_SKEW",
    "APICODE_SIGNATURE_NONCE_REUSED",
    "APICODE_BAD_ACCESS_KEY",
    "APICODE_NOT_FOUND",
    "APICODE_PAYLOAD_TOO_LARGE",
    "APICODE_THROTTLED",
    "APICODE_FORCED",
    "APICODE_WEBHOOK_NOT_FOUND",
    "APICODE_WEBHOOK_DISABLED",
    "APICODE_SUBSCRIBER_FAILED",
]

TOKEN_PATH = "/api/v3/get-management-token"
TRIGGER_PATH = "/api/v3/trigger-webhook"
CREATE_PATH = "/api/v3/create-webhook"
UPDATE_PATH = "/api/v3/update-webhook"
DELETE_PATH = "/api/v3/delete-webhook"
GET_PATH = "/api/v3/get-webhook"
LIST_PATH = "/api/v3/list-webhooks"
LOGS_PATH = "/api/v3/get-webhook-logs"
EVENTS_PATH = "/api/v3/get-webhook-event-list"
API_PREFIX = "/api/v3/"

# The JWT payload's base64 form depends only on this id's bytes (it is the
# first claim, so its alignment is fixed, and the other claims are digits and
# hex). Plain alphanumerics never encode to '-' or '_', so a client that
# decodes the payload as standard base64 (the official Python SDK does) works
# with the default, as it does with real GenAuth user pool ids.
DEFAULT_USERPOOL_ID = "6229ffa0c0de0e1a7000a001"
# An id whose payload encoding has '-' and '_': for testing that a client
# decodes the JWT payload as base64url ('~' sits where a 6-bit group is all
# ones). Pass it as Emulator(userpool_id=URLSAFE_USERPOOL_ID).
URLSAFE_USERPOOL_ID = "6229ffa0c0de~emulator~pool"
DEFAULT_WEBHOOK_SECRET = "genauth-c-webhook-secret"
# What trigger-webhook delivers when the caller gives no requestBody.
DEFAULT_EVENT: dict[str, object] = {"eventName": "test", "data": {"description": "A test from authing"}}

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_PAGE_LIMIT = 50
DEFAULT_PAGE_LIMIT = 10

APICODE_INVALID_ARGUMENT = 1000
APICODE_TOKEN_MISSING = 1020
APICODE_TOKEN_INVALID = 1021
APICODE_TOKEN_EXPIRED = 1022
APICODE_USERPOOL_MISMATCH = 1023
APICODE_SIGNATURE_INVALID = 1300
APICODE_SIGNATURE_MALFORMED = 1301
APICODE_SIGNATURE_UNKNOWN_KEY = 1302
APICODE_SIGNATURE_UNSUPPORTED = 1303
APICODE_SIGNATURE_NO_DATE = 1304
APICODE_SIGNATURE_SKEW = 1305
APICODE_SIGNATURE_NONCE_REUSED = 1306
APICODE_BAD_ACCESS_KEY = 1310
APICODE_NOT_FOUND = 1404
APICODE_PAYLOAD_TOO_LARGE = 1413
APICODE_THROTTLED = 1429
APICODE_FORCED = 1999
APICODE_WEBHOOK_NOT_FOUND = 2404
APICODE_WEBHOOK_DISABLED = 2422
APICODE_SUBSCRIBER_FAILED = 6020
