"""ManagementClient() without keys: the credentials come from os.environ."""
import os

import pytest

from genauth_c import ManagementClient
from genauth_c.emulator import Emulator

AK, SK = "AKID-from-the-env-7788", "SECRET-from-the-env-do-not-print"
NAMES = {"genauth": "GENAUTH", "authing": "AUTHING"}


@pytest.fixture
def emulator():
    with Emulator(AK, SK) as emu:
        yield emu


@pytest.fixture
def clean_env(monkeypatch):
    for prefix in NAMES.values():
        for name in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "HOST"):
            monkeypatch.delenv(f"{prefix}_{name}", raising=False)
    return monkeypatch


@pytest.mark.parametrize("brand", ["genauth", "authing"])
def test_keys_and_host_from_the_environment(emulator, clean_env, brand):
    prefix = NAMES[brand]
    clean_env.setenv(f"{prefix}_ACCESS_KEY_ID", AK)
    clean_env.setenv(f"{prefix}_ACCESS_KEY_SECRET", SK)
    clean_env.setenv(f"{prefix}_HOST", emulator.url)
    with ManagementClient(brand=brand) as client:
        assert client.host == emulator.url
        result = client.trigger_webhook("nope")
    # The emulator checked the key pair (a wrong one is an AuthError) and
    # answered the call: an unknown webhook.
    assert result["statusCode"] == 404, result
    assert emulator.token_fetches == 1


def test_the_other_brands_variables_are_not_read(clean_env):
    clean_env.setenv("AUTHING_ACCESS_KEY_ID", AK)
    clean_env.setenv("AUTHING_ACCESS_KEY_SECRET", SK)
    with pytest.raises(TypeError) as info:
        ManagementClient()
    assert "GENAUTH_ACCESS_KEY_ID and GENAUTH_ACCESS_KEY_SECRET" in str(info.value)


def test_explicit_arguments_win(emulator, clean_env):
    clean_env.setenv("GENAUTH_ACCESS_KEY_ID", "wrong-id")
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", "wrong-secret")
    clean_env.setenv("GENAUTH_HOST", "http://127.0.0.1:9")
    with ManagementClient(AK, SK, host=emulator.url) as client:
        assert client.host == emulator.url
        assert client.trigger_webhook("nope")["statusCode"] == 404


def test_one_key_given_the_other_from_the_environment(emulator, clean_env):
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    with ManagementClient(AK, host=emulator.url) as client:
        assert client.trigger_webhook("nope")["statusCode"] == 404
    clean_env.delenv("GENAUTH_ACCESS_KEY_SECRET")
    clean_env.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    with ManagementClient(access_key_secret=SK, host=emulator.url) as client:
        assert client.trigger_webhook("nope")["statusCode"] == 404


def test_os_environ_changes_are_seen(emulator, clean_env):
    import os
    os.environ["GENAUTH_ACCESS_KEY_ID"] = AK  # undone by monkeypatch's delenv
    os.environ["GENAUTH_ACCESS_KEY_SECRET"] = SK
    try:
        with ManagementClient(host=emulator.url) as client:
            assert client.trigger_webhook("nope")["statusCode"] == 404
    finally:
        del os.environ["GENAUTH_ACCESS_KEY_ID"]
        del os.environ["GENAUTH_ACCESS_KEY_SECRET"]


@pytest.mark.parametrize("missing, named", [
    (("ACCESS_KEY_ID",), "no access_key_id given, and GENAUTH_ACCESS_KEY_ID is not set"),
    (("ACCESS_KEY_SECRET",), "no access_key_secret given, and GENAUTH_ACCESS_KEY_SECRET is not set"),
    (("ACCESS_KEY_ID", "ACCESS_KEY_SECRET"),
     "GENAUTH_ACCESS_KEY_ID and GENAUTH_ACCESS_KEY_SECRET are not set"),
])
def test_missing_variables_are_named(clean_env, missing, named):
    for name in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET"):
        if name not in missing:
            clean_env.setenv("GENAUTH_" + name, "x" * 16)
    with pytest.raises(TypeError, match=named):
        ManagementClient()


def test_an_empty_variable_counts_as_unset(clean_env):
    clean_env.setenv("GENAUTH_ACCESS_KEY_ID", "")
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    with pytest.raises(TypeError, match="GENAUTH_ACCESS_KEY_ID is not set"):
        ManagementClient()


def test_a_key_from_the_environment_is_never_printed(clean_env):
    clean_env.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    client = ManagementClient(host="http://127.0.0.1:9")
    text = repr(client) + str(client)
    assert SK not in text and AK not in text
    assert AK[-4:] in text  # the masked form: enough to tell keys apart
    client.close()


@pytest.mark.parametrize("name", ["ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "HOST"])
@pytest.mark.parametrize("value", [" ", SK + "\n", SK + "\r\n", " " + SK, "\t"],
                         ids=["space", "lf", "crlf", "leading-space", "tab"])
def test_a_variable_with_a_space_or_line_end_at_an_end_is_named(emulator, clean_env, name, value):
    # Before: sent as it was (the server refused the keys) or refused under
    # the parameter's name, which the caller never gave.
    clean_env.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    clean_env.setenv("GENAUTH_HOST", emulator.url)
    clean_env.setenv("GENAUTH_" + name, value)
    with pytest.raises(ValueError) as caught:
        ManagementClient()
    assert str(caught.value) == (f"GENAUTH_{name}: begins or ends with a space or line end "
                                 "(set in the environment)")
    assert emulator.requests == []


@pytest.mark.parametrize("name", ["ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "HOST"])
def test_a_variable_that_is_not_utf8_is_named(clean_env, name):
    clean_env.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    clean_env.setenv("GENAUTH_" + name, "x")  # restored after the test
    os.environb[b"GENAUTH_" + name.encode()] = b"http://x\xff" if name == "HOST" else b"KEY\xff-1"
    with pytest.raises(ValueError) as caught:
        ManagementClient(brand="genauth")
    assert str(caught.value) == f"GENAUTH_{name}: not UTF-8 text (set in the environment)"


@pytest.mark.parametrize("brand", ["genauth", "authing"])
@pytest.mark.parametrize("name", ["ACCESS_KEY_ID", "ACCESS_KEY_SECRET"])
def test_a_key_variable_with_a_control_character_inside_is_refused(emulator, clean_env, brand, name):
    # A line end at an end is the variable's slip, named above; one inside
    # is refused by the rule for the argument, the secret as the key id,
    # under the argument's name and the variable's, which is what the caller
    # set (before: the argument's alone, one the caller never passed).
    prefix = NAMES[brand]
    clean_env.setenv(f"{prefix}_ACCESS_KEY_ID", AK)
    clean_env.setenv(f"{prefix}_ACCESS_KEY_SECRET", SK)
    clean_env.setenv(f"{prefix}_{name}", (AK if name == "ACCESS_KEY_ID" else SK) + "\r\nx")
    with pytest.raises(ValueError) as caught:
        ManagementClient(host=emulator.url, brand=brand)
    assert str(caught.value) == (f"{name.lower()} ({prefix}_{name}, set in the environment): "
                                 "must not contain CR, LF or other control characters")
    assert emulator.requests == []


@pytest.mark.parametrize("brand", ["genauth", "authing"])
def test_a_host_variable_the_core_refuses_is_named(clean_env, brand):
    prefix = NAMES[brand]
    clean_env.setenv(f"{prefix}_ACCESS_KEY_ID", AK)
    clean_env.setenv(f"{prefix}_ACCESS_KEY_SECRET", SK)
    clean_env.setenv(f"{prefix}_HOST", "ftp://example.invalid")
    with pytest.raises(ValueError) as caught:
        ManagementClient(brand=brand)
    assert str(caught.value) == (f"host ({prefix}_HOST, set in the environment): must be an "
                                 "http:// or https:// URL")
    # Given as an argument, the same value is the argument's.
    with pytest.raises(ValueError) as caught:
        ManagementClient(host="ftp://example.invalid", brand=brand)
    assert str(caught.value) == "host: must be an http:// or https:// URL"


def test_an_explicit_argument_is_not_checked_as_a_variable(emulator, clean_env):
    # A variable the arguments make unused is not read, so not checked.
    clean_env.setenv("GENAUTH_ACCESS_KEY_SECRET", " ")
    with ManagementClient(AK, SK, host=emulator.url) as client:
        assert client.trigger_webhook("nope")["statusCode"] == 404
