"""Realtime's REST broadcast endpoints: broadcasts sent over HTTP, without joining a channel.

``POST /realtime/v1/api/broadcast`` takes ``{"messages": [{topic, event, payload,
private?, id?}]}`` (what supabase-js ``send()`` falls back to when not joined);
``POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]`` takes
the payload itself (supabase-js ``httpSend()``). Both answer 202 with no body, as
the real server does (docs/internals.md, "Realtime: REST broadcast"): public
messages go to every channel joined on the topic; private ones only when the
caller's role passes the topic's broadcast write policy, and are otherwise dropped
silently. A bad batch is refused whole with 422.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from liveparams_stack.realtime.auth import AuthError, Identity, verify
from liveparams_stack.realtime.hub import Hub
from liveparams_stack.realtime.policies import ChannelAuthorizer

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 3000 * 1024
"""``max_payload_size_in_kb``, the real server's default tenant limit."""
BATCH_PATH = "/realtime/v1/api/broadcast"
SINGLE_PATH = "/realtime/v1/api/broadcast/{topic}/events/{event}"


def _unauthorized() -> web.Response:
    return web.json_response({"message": "Unauthorized"}, status=401)


def _caller(request: web.Request, jwt_secret: str) -> Identity | None:
    """The bearer token, else the ``apikey`` header, verified; None when absent or refused."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.headers.get("apikey", "")
    if not token:
        return None
    try:
        return verify(token, jwt_secret)
    except AuthError as exc:
        log.info("realtime: REST broadcast refused: %s", exc.code)
        return None


def _message_errors(message: Any) -> dict[str, list[str]]:
    """Ecto-style errors of one batch message (empty when valid)."""
    if not isinstance(message, dict):
        return {"message": ["is invalid"]}
    errors: dict[str, list[str]] = {}
    for key in ("topic", "event"):
        if not isinstance(message.get(key), str) or not message[key]:
            errors[key] = ["can't be blank"] if message.get(key) in (None, "") else ["is invalid"]
    payload = message.get("payload")
    if payload is None:
        errors["payload"] = ["can't be blank"]
    elif not isinstance(payload, dict):
        errors["payload"] = ["is invalid"]
    elif len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
        errors["payload"] = ["Payload size exceeds tenant limit"]
    if "private" in message and not isinstance(message["private"], bool | None):
        errors["private"] = ["is invalid"]
    return errors


class BroadcastApi:
    def __init__(self, hub: Hub, authorizer: ChannelAuthorizer, jwt_secret: str) -> None:
        self._hub = hub
        self._authorizer = authorizer
        self._jwt_secret = jwt_secret

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(BATCH_PATH, self.batch)
        app.router.add_post(SINGLE_PATH, self.single)

    async def batch(self, request: web.Request) -> web.Response:
        caller = _caller(request, self._jwt_secret)
        if caller is None:
            return _unauthorized()
        try:
            body = await request.json()
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return web.json_response({"errors": {"messages": ["can't be blank"]}}, status=422)
        errors = [_message_errors(m) for m in messages]
        if any(errors):
            return web.json_response({"errors": {"messages": errors}}, status=422)
        allowed: dict[str, bool | None] = {}  # None: the check could not run; dropped like a refusal
        for message in messages:
            private = bool(message.get("private"))
            topic = message["topic"]
            if private and topic not in allowed:
                allowed[topic] = await self._authorizer.can_write(topic, caller, "broadcast")
            if private and not allowed[topic]:
                continue
            self._send(private, topic, message["event"], message["payload"], message.get("id"))
        return web.Response(status=202)

    async def single(self, request: web.Request) -> web.Response:
        caller = _caller(request, self._jwt_secret)
        if caller is None:
            return _unauthorized()
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return web.json_response({"message": "payload must be a JSON object"}, status=422)
        topic, event = request.match_info["topic"], request.match_info["event"]
        private = request.query.get("private") == "true"
        if not private or await self._authorizer.can_write(topic, caller, "broadcast"):
            self._send(private, topic, event, payload, None)
        return web.Response(status=202)

    def _send(self, private: bool, topic: str, event: str, payload: dict[str, Any], message_id: Any) -> None:
        message: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload}
        if message_id is not None:
            message["meta"] = {"id": message_id}
        self._hub.broadcast_to((private, f"realtime:{topic}"), message)
