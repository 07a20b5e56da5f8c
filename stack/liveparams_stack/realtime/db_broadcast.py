"""Broadcast from Database: a ``realtime.messages`` row inserted by ``realtime.send`` becomes a Broadcast.

As the real server's ``ReplicationConnection`` does (supabase/realtime,
``lib/realtime/tenants/replication_connection.ex``): each INSERT of a ``broadcast``
row goes to the channels joined on its topic with its privacy, as
``{"type": "broadcast", "event": <event>, "payload": <payload>, "meta": {"id": <id>}}``
(``UserBroadcast.convert_to_json_broadcast``); a private one only to channels whose
read policy allowed broadcast at join (``broadcast_read?``). ``realtime.send`` puts
the message id into the payload too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from liveparams_stack.realtime.cdc import WalChange

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseBroadcast:
    """One message to send: the room it goes to (privacy, ``realtime:<topic>``) and the broadcast frame."""

    room: tuple[bool, str]
    message: dict[str, Any]


def database_broadcast(change: WalChange) -> DatabaseBroadcast | None:
    """The broadcast a captured ``realtime.messages`` INSERT carries; None when it carries none."""
    row = {column.name: column.value for column in change.columns}
    if row.get("extension") != "broadcast" or not row.get("topic") or not row.get("event"):
        return None
    try:
        payload = json.loads(row.get("payload") or "null")
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        log.warning("realtime: message %s on %r has no JSON object payload; not sent", row.get("id"), row["topic"])
        return None
    message = {"type": "broadcast", "event": row["event"], "payload": payload, "meta": {"id": row.get("id")}}
    return DatabaseBroadcast(room=(row.get("private") == "true", f"realtime:{row['topic']}"), message=message)
