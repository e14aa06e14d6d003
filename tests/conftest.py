import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rawserver import FakeGenAuth, RawServer  # noqa: E402

AK = "AKIDexample1234"
SK = "SECRET-do-not-leak-9f8e7d"


@pytest.fixture
def fake():
    """A raw-socket GenAuth with both endpoints; .server is the RawServer."""
    handler = FakeGenAuth()
    with RawServer(handler) as server:
        handler.server = server
        yield handler


@pytest.fixture
def client_for():
    """client_for(url, **options) -> a ManagementClient closed after the test."""
    from genauth_c import ManagementClient

    made = []

    def make(url, **kw):
        c = ManagementClient(kw.pop("access_key_id", AK),
                             kw.pop("access_key_secret", SK), host=url, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
