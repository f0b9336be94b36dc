"""A scripted Anthropic Messages API server on 127.0.0.1 (POST /v1/messages, streamed as Anthropic streams),
built on tests/scripted_core.py: the same reply queue and reply keys (content, tool_calls, delay, usage,
headers, status + error), plus: thinking (text of a thinking block, signed by the server), stop_reason
(default end_turn or tool_use), drop (headers sent, then the connection closed before any event), drop_after
(cut after that many events), error_event (an error event of that type in the stream, after message_start)
and error_after (an api_error event after that many events); GET /v1/models lists `models` in Anthropic's shape;
dialect (tests/scripted.py's) is ignored.
Every request is checked against the rules the real API enforces (rules() below; the fixtures assert none is
broken)."""
import contextlib
import hashlib
import json
import re
import time

from scripted_core import Handler, ScriptedServer

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
         529: "overloaded_error"}
ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def sign(thinking: str) -> str:
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:24]


def error_body(status: int, message: str, kind: str | None = None) -> dict:
    return {"type": "error", "error": {"type": kind or TYPES.get(status, "api_error"), "message": message}}


class AnthropicHandler(Handler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            return self.send(404, error_body(404, f"no route {self.path}"))
        body, server = json.loads(raw or b"{}"), self.server.scripted
        server.headers.append({k.lower(): v for k, v in self.headers.items()})
        with contextlib.suppress(ConnectionError):
            server.answer(self, body, server.next_reply(body))


class ScriptedAnthropic(ScriptedServer):
    handler = AnthropicHandler

    def __init__(self, replies=(), **kwargs):
        super().__init__(replies, **kwargs)
        self.headers = []  # of each request

    def model_list(self) -> dict:
        data = [{"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
                for name in self.models]
        return {"data": data, "has_more": False, "first_id": self.models[0] if self.models else None,
                "last_id": self.models[-1] if self.models else None}

    @property
    def url(self) -> str:  # as ANTHROPIC_BASE_URL is given: no /v1
        return super().url.removesuffix("/v1")

    def answer(self, http, body: dict, reply: dict):
        if "status" in reply:
            status = reply["status"]
            error = error_body(status, reply.get("error", "scripted error"))
            return http.send(status, error, reply.get("headers"))
        http.send(200, None, reply.get("headers"), "text/event-stream")
        if reply.get("drop"):
            return  # no event, no end of the chunked body: the client reads a cut stream
        for n, event in enumerate(self.events(body, reply)):
            time.sleep(float(reply.get("delay") or 0))
            if n == reply.get("drop_after"):
                return  # an abrupt end: no message_stop, no end of the chunked body
            if n == reply.get("error_after"):
                event = error_body(500, "scripted error in the stream", "api_error")
            http.send_chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            if event["type"] == "error":
                break
        http.send_chunk(b"")

    def events(self, body: dict, reply: dict):
        size = self.chunk_size
        usage = {"input_tokens": len(json.dumps(body.get("messages", []))) // 4, "output_tokens": 1,
                 "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, **(reply.get("usage") or {})}
        yield {"type": "message_start", "message": {
            "id": "msg_scripted", "type": "message", "role": "assistant", "content": [],
            "model": body.get("model"), "stop_reason": None, "stop_sequence": None, "usage": usage}}
        yield {"type": "ping"}
        if kind := reply.get("error_event"):
            yield error_body(529, "scripted error in the stream", kind)
            return
        blocks = []
        if thinking := reply.get("thinking"):
            blocks.append(({"type": "thinking", "thinking": "", "signature": ""},
                           [{"type": "thinking_delta", "thinking": thinking[i:i + size]}
                            for i in range(0, len(thinking), size)]
                           + [{"type": "signature_delta", "signature": sign(thinking)}]))
        if content := reply.get("content"):
            blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": content[i:i + size]}
                                                          for i in range(0, len(content), size)]))
        for call in reply["tool_calls"]:
            args = call.get("arguments") or ""
            blocks.append(({"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}},
                           [{"type": "input_json_delta", "partial_json": args[i:i + size]}
                            for i in range(0, len(args), size)]))
        for index, (start, deltas) in enumerate(blocks):
            yield {"type": "content_block_start", "index": index, "content_block": start}
            yield from ({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
            yield {"type": "content_block_stop", "index": index}
        pieces = (reply.get("content") or "") + "".join(c.get("arguments") or "" for c in reply["tool_calls"])
        stop = reply.get("stop_reason") or ("tool_use" if reply["tool_calls"] else "end_turn")
        yield {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
               "usage": {"output_tokens": max(1, len(pieces) // 4)}}
        yield {"type": "message_stop"}


def rules(body: dict) -> list[str]:
    """Every rule of the Messages API this request breaks, as sentences; [] when the API would take it."""
    found, seen, breakpoints = [], set(), 0
    messages, tools = body.get("messages") or [], body.get("tools") or []
    if not isinstance(body.get("max_tokens"), int):
        found.append("max_tokens is required")
    if thinking := body.get("thinking"):
        if body["max_tokens"] <= thinking["budget_tokens"]:
            found.append("max_tokens must be greater than thinking.budget_tokens")
        if "temperature" in body:
            found.append("temperature may not be set with thinking")
    for block in body.get("system") or []:
        breakpoints += "cache_control" in block
        if not block.get("text"):
            found.append("system: an empty text block")
    for tool in tools:
        breakpoints += "cache_control" in tool
        if not re.match(r"^[a-zA-Z0-9_-]{1,64}$", tool.get("name", "")) or "input_schema" not in tool:
            found.append(f"tool {tool.get('name')!r}: a bad name or no input_schema")
    if not messages or messages[0].get("role") != "user":
        found.append("the first message must be a user message")
    pending = set()
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ("user", "assistant"):
            found.append(f"messages.{i}: role {role!r}")
        if i and messages[i - 1].get("role") == role:
            found.append(f"messages.{i}: roles must alternate")
        if not content:
            found.append(f"messages.{i}: empty content")
            continue
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        answered = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        if pending and (role != "user" or set(answered) != pending):
            found.append(f"messages.{i}: tool_use ids {sorted(pending)} must each have a tool_result here "
                         f"(found {answered})")
        elif answered and not pending:
            found.append(f"messages.{i}: a tool_result for no tool_use")
        if answered and any(b.get("type") != "tool_result" for b in blocks[:len(answered)]):
            found.append(f"messages.{i}: tool_result blocks must come first")
        pending = set()
        kinds = [b.get("type") for b in blocks]
        for b in blocks:
            breakpoints += "cache_control" in b
            kind = b.get("type")
            if kind == "text" and not b.get("text"):
                found.append(f"messages.{i}: text content blocks must be non-empty")
            elif kind == "tool_use":
                if role != "assistant" or not ID.match(b.get("id", "")) or b["id"] in seen:
                    found.append(f"messages.{i}: tool_use id {b.get('id')!r} is bad, repeated or misplaced")
                if not isinstance(b.get("input"), dict):
                    found.append(f"messages.{i}: tool_use input must be an object")
                seen.add(b.get("id"))
                pending.add(b.get("id"))
            elif kind in ("thinking", "redacted_thinking"):
                if role != "assistant" or "text" in kinds[:kinds.index(kind)] or \
                        "tool_use" in kinds[:kinds.index(kind)]:
                    found.append(f"messages.{i}: thinking blocks must come first in an assistant message")
                if kind == "thinking" and b.get("signature") != sign(b.get("thinking", "")):
                    found.append(f"messages.{i}: a thinking block was changed (its signature does not match)")
            elif kind == "tool_result" and not isinstance(b.get("content", ""), (str, list)):
                found.append(f"messages.{i}: tool_result content must be text or blocks")
        if thinking and role == "assistant" and "tool_use" in kinds and i >= len(messages) - 2 and \
                kinds[0] not in ("thinking", "redacted_thinking"):
            found.append(f"messages.{i}: with thinking on, the last tool use must begin with thinking")
    if pending:
        found.append(f"tool_use ids {sorted(pending)} were never answered")
    if breakpoints > 4:
        found.append(f"{breakpoints} cache_control blocks; at most 4 are allowed")
    return found
