"""Fixed encryption keys FOR TESTS ONLY (public, in git): never configure them anywhere else.

tests/histories/*_encrypted.json were recorded under them, so their replay test needs them.
"""

from __future__ import annotations

import base64

from client.codec import KEYS_ENV

OLD_KEY_ID, OLD_KEY = "test-2025", b"sagaworks TEST key 2025: public!"
NEW_KEY_ID, NEW_KEY = "test-2026", b"sagaworks TEST key 2026: public!"
TEST_KEYS = {OLD_KEY_ID: OLD_KEY, NEW_KEY_ID: NEW_KEY}
"""Oldest first: new payloads use ``test-2026``."""
TEST_ENV = {KEYS_ENV: ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in TEST_KEYS.items())}
"""The environment that configures :data:`TEST_KEYS`."""
