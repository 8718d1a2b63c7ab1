"""The official ``temporal`` CLI, as a user drives a run with it (the dev server's binary)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from sagaworks.client.devserver import temporal_binary


def update_with_official_cli(
    address: str, workflow_id: str, name: str, payload: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """``temporal workflow update execute`` of Update ``name`` with ``payload``; blocking, so a
    test calls it in a thread while its worker shares the event loop and must answer."""
    return subprocess.run(
        [
            temporal_binary(),
            "workflow",
            "update",
            "execute",
            "--address",
            address,
            "--workflow-id",
            workflow_id,
            "--name",
            name,
            "--input",
            json.dumps(payload),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
