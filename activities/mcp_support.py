"""The support-ticket family's own side effect: telling someone a ticket was escalated.

``SAGAWORKS_ESCALATION_WEBHOOK`` (read by the worker) is a URL that receives the notice as
a JSON POST (a Slack or pager webhook); without it the notice goes to the worker's log.
Lookups of the ticket's handlers are MCP tool calls (``activities/mcp_servers.py``).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request

from temporalio import activity

from sagaworks.activities.errors import ErrorClass, error
from sagaworks.contracts.support import EscalationNotice

log = logging.getLogger("sagaworks.support")
WEBHOOK_ENV = "SAGAWORKS_ESCALATION_WEBHOOK"


@activity.defn
def notify_escalation(notice: EscalationNotice) -> str:
    """Send the escalation notice; returns where it went (``webhook <url>`` or ``log``).

    A refused request (4xx) is final; an unreachable webhook or a 5xx is retried.
    """
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        log.warning("ticket %s escalated to %s: %s", notice.ticket_id, notice.priority, notice.reason)
        return "log"
    request = urllib.request.Request(
        url, data=json.dumps(notice.model_dump()).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as refused:
        raise error(
            ErrorClass.EXTERNAL, f"escalation webhook answered {refused.code}", non_retryable=refused.code < 500
        ) from refused
    except (urllib.error.URLError, TimeoutError) as unreachable:
        raise error(ErrorClass.EXTERNAL, f"escalation webhook unreachable: {unreachable}") from unreachable
    return f"webhook {url}"
