"""Responses decode as json.loads decodes them, and what cannot be decoded
raises DecodeError with the HTTP status and the start of the body."""
import json

import pytest

import genauth_c
from rawserver import Response

ENVELOPE = b'{"statusCode":200,"message":"ok","data":{"response":%s}}'


def answer_with(fake, body: bytes, status: int = 200):
    def handler(req):
        if "trigger-webhook" in req.path:
            return Response(status=status, body=body,
                            headers=[("Content-Type", "application/json")])
        return fake(req)
    fake.server.handler = handler


@pytest.mark.parametrize("literal", [
    b'"\\ud83d"',                 # a cut emoji, as JavaScript emits it
    b'"\\udc00"',                 # a lone low surrogate
    b'"a\\ud800x"',
    b'"\\ud83d\\ud83d\\ude00"',   # a lone high before a pair
    b'"\\ud83d\\u0000"',          # a lone surrogate beside U+0000
    b'{"\\udfff":["\\ud800",1]}',  # in keys too
    b'"\xed\xa0\xbd"',            # encoded, not escaped: json.loads takes it
])
def test_lone_surrogates_decode_as_json_loads(fake, client_for, literal):
    body = ENVELOPE % literal
    answer_with(fake, body)
    result = client_for(fake.server.url).trigger_webhook("wh1")
    assert result == json.loads(body)
    assert result["data"]["response"] == json.loads(literal)


@pytest.mark.parametrize("body,why", [
    (ENVELOPE % b'"\xff"', "not UTF-8"),
    (ENVELOPE % (b"1" * 4301), "more than 4300 digits"),
])
def test_undecodable_bodies_carry_status_and_excerpt(fake, client_for, body,
                                                     why):
    # json.loads refuses each of these too.
    with pytest.raises(ValueError):
        json.loads(body)
    answer_with(fake, body, status=201)
    with pytest.raises(genauth_c.DecodeError, match=why) as info:
        client_for(fake.server.url).trigger_webhook("wh1")
    assert info.value.http_status == 201
    assert info.value.excerpt == body[:200]


def test_an_integer_of_4300_digits_is_an_int(fake, client_for):
    body = ENVELOPE % (b"9" * 4300)
    answer_with(fake, body)
    result = client_for(fake.server.url).trigger_webhook("wh1")
    assert result["data"]["response"] == int("9" * 4300)


def test_excerpt_of_an_undecodable_body_masks_the_token(fake, client_for):
    def handler(req):
        if "trigger-webhook" in req.path:
            echo = json.dumps(req.raw.decode("latin-1")).encode()
            return Response(body=b'{"echo":' + echo + b',"x":"\xff"}')
        return fake(req)
    fake.server.handler = handler
    with pytest.raises(genauth_c.DecodeError, match="not UTF-8") as info:
        client_for(fake.server.url).trigger_webhook("wh1")
    token = next(iter(fake.valid_tokens))
    assert b"Bearer ***" in info.value.excerpt
    assert token[:8].encode() not in info.value.excerpt
