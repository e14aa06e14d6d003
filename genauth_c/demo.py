"""genauth-c's end-to-end demo: ``python -m genauth_c.demo``.

Starts the local GenAuth V3 emulator and a small webhook receiver, registers
the receiver as webhook ``6229ffaxxxxxxxxcade3e3d9``, runs the README's
trigger_webhook example against the emulator with the C-backed
``ManagementClient``, and prints the result and what the receiver got.
Everything stays on 127.0.0.1. Exit status 0 when the webhook was delivered
and the call answered ``statusCode`` 200.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from genauth_c.emulator import Emulator, WebhookReceiver

ACCESS_KEY_ID = "GEN_AUTH_ACCESS_KEY_ID"
ACCESS_KEY_SECRET = "GEN_AUTH_ACCESS_KEY_SECRET"
WEBHOOK_ID = "6229ffaxxxxxxxxcade3e3d9"
EVENT = {"eventName": "test", "data": {"description": "A test from authing"}}


def _show(title: str, value: Any) -> None:
    print(f"=== {title} ===")
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit status."""
    # Imported here so that the emulator module stays importable (and this
    # module's help readable) when the C extension has not been built.
    from genauth_c import ManagementClient

    with Emulator(ACCESS_KEY_ID, ACCESS_KEY_SECRET) as emu, WebhookReceiver() as receiver:
        emu.add_webhook(WEBHOOK_ID, receiver.url + "/webhook")
        print(f"emulator: {emu.url}   webhook receiver: {receiver.url}/webhook")

        # The README example, verbatim apart from the host.
        with ManagementClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, host=emu.url) as client:
            result = client.trigger_webhook(
                WEBHOOK_ID,
                request_headers={"eventName": "test", "data": {"description": "A test from authing"}},
                request_body={"eventName": "test", "data": {"description": "A test from authing"}},
            )

        _show("trigger_webhook result", result)
        for i, got in enumerate(receiver.received, 1):
            _show(
                f"webhook receiver got request #{i}",
                {
                    "method": got.method,
                    "path": got.path,
                    "headers": [f"{name}: {value}" for name, value in got.headers],
                    "body": got.json if got.json is not None else got.body.decode("utf-8", "replace"),
                },
            )
        if not receiver.received:
            print("=== webhook receiver got nothing ===")

    # The client returns the envelope as a dict (any mapping will do here).
    status = result.get("statusCode") if hasattr(result, "get") else None
    if status != 200 or not receiver.received:
        print(f"demo failed: statusCode={status!r}, deliveries={len(receiver.received)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
