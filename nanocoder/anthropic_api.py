"""The Model (model.py) for Anthropic's Messages API, through the official anthropic SDK (an optional extra,
imported at the first request): nanocoder's messages become Messages API turns and blocks, the streamed
events one Reply. Faults are retried as on the Chat Completions path (model.Adapter)."""
import json
import re

from . import events
from .model import Adapter, Parts, Reply, ToolCall, broken

# stop_reason -> the Reply's finish_reason, in Chat Completions' words where it has them
STOPS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "tool_use": "tool_calls",
         "max_tokens": "length", "model_context_window_exceeded": "length", "refusal": "refusal"}
# an error event in the stream has a type, not a status: the status that type comes with
STATUSES = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
            "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
            "overloaded_error": 529}
DEFAULT_MAX_TOKENS = 8192  # the API requires a number
CACHED = {"type": "ephemeral"}  # a cache breakpoint: the prefix up to this block is cached
SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # an escaped surrogate, in JSON text


def _turns(messages: list[dict]) -> list[dict]:
    """nanocoder's messages as Messages API turns: user and assistant alternate from a user turn; a result is
    a tool_result block in the user turn after its call; no text block is empty; thinking leads its turn."""
    turns = []
    for m in messages:
        role, text = m.get("role"), m.get("content")
        if role == "assistant":
            blocks = list(m.get("thinking") or ())
            blocks += [{"type": "text", "text": text}] if text else []
            blocks += [{"type": "tool_use", "id": _id(c["id"]), "name": c["function"]["name"],
                        "input": _input(c["function"]["arguments"])} for c in m.get("tool_calls") or ()]
        elif role == "tool":
            role, block = "user", {"type": "tool_result", "tool_use_id": _id(m["tool_call_id"])}
            if text:
                block["content"] = text
            if m.get("is_error"):
                block["is_error"] = True
            blocks = [block]
        elif role == "user":
            blocks = [{"type": "text", "text": text}] if text else []
        else:
            continue  # the system prompt goes apart
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        elif blocks:
            turns.append({"role": role, "content": blocks})
    if not turns or turns[0]["role"] != "user":  # an empty prompt, a history that lost its start
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continued)"}]})
    for turn in [t for t in turns if t["role"] == "user"][-2:]:
        turn["content"][-1] = {**turn["content"][-1], "cache_control": CACHED}
    return turns


def _input(arguments: str) -> dict:
    """A call's arguments as an object. Their text may escape a lone surrogate (`"\\ud800"`), which Chat
    Completions takes as it is, but which no UTF-8 body can carry once decoded: it becomes U+FFFD."""
    value = json.loads(arguments)
    if SURROGATE.search(arguments):
        value = json.loads(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
                           .decode("utf-8", "replace"))
    return value


def _id(call_id: str) -> str:
    """A call id as the API takes it (letters, digits, _ and -): another provider's may hold `.` or `:`."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", call_id)


class _Assembler(Parts):
    """One Reply from the streamed events."""
    usage_keys = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")

    def __init__(self):
        super().__init__()
        self.blocks = {}  # index -> block

    def add(self, event: dict) -> None:
        self.out, kind = [], event["type"]
        if kind == "message_start":
            self._count(event["message"].get("usage") or {})
        elif kind == "content_block_start":
            block = dict(event["content_block"])
            if block["type"] == "tool_use":  # its input comes as pieces of JSON (or whole, from a proxy)
                block["input"] = [json.dumps(block["input"])] if block.get("input") else []
            elif block["type"] == "thinking":
                block["thinking"] = [block.get("thinking") or ""]
                block["signature"] = block.get("signature") or ""
            elif block["type"] == "text" and block.get("text"):
                self._text(block["text"])
            self.blocks[event["index"]] = block
        elif kind == "content_block_delta":
            block, delta = self.blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                self._text(delta["text"])
            elif delta["type"] == "input_json_delta":
                block["input"].append(delta["partial_json"])
            elif delta["type"] == "thinking_delta":
                block["thinking"].append(delta["thinking"])
                self._reasoning(delta["thinking"])
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
        elif kind == "message_delta":
            self._count(event.get("usage") or {})
            if stop := event["delta"].get("stop_reason"):
                self.finish_reason = STOPS.get(stop, stop)

    def _text(self, piece: str) -> None:
        self.text.append(piece)
        self.shown += len(piece)
        self.out.append(events.Text(piece))

    def reply(self) -> Reply:
        blocks = [self.blocks[i] for i in sorted(self.blocks)]
        calls = [ToolCall(b["id"], b["name"], "".join(b["input"]) or "{}")
                 for b in blocks if b["type"] == "tool_use"]
        thinking = [{**b, "thinking": "".join(b["thinking"])} if b["type"] == "thinking" else b
                    for b in blocks if b["type"] in ("thinking", "redacted_thinking")]
        u = self.usage
        return Reply("".join(self.text), "".join(self.thought), tool_calls=calls,
                     finish_reason=self.finish_reason,
                     prompt_tokens=u["input_tokens"] + u["cache_read_input_tokens"]
                     + u["cache_creation_input_tokens"],
                     completion_tokens=u["output_tokens"], cached_tokens=u["cache_read_input_tokens"],
                     thinking=thinking)


class AnthropicModel(Adapter):
    package, key, path, Parts = "anthropic", "ANTHROPIC_API_KEY", "/v1/messages", _Assembler
    unit = "an event"

    def __init__(self, *args, thinking: int | None = None, auth_token: str | None = None, **kwargs):
        """As model.Adapter; auth_token: a bearer token in place of a key. api_key, auth_token, base_url: None
        leaves them to the SDK (ANTHROPIC_API_KEY, then ANTHROPIC_AUTH_TOKEN; ANTHROPIC_BASE_URL); thinking: a
        budget of tokens for extended thinking, None for none."""
        super().__init__(*args, **kwargs)
        self.thinking, self.auth_token = thinking, auth_token

    def request(self, messages: list[dict], tools: list[dict] | None = None) -> dict:
        """The Messages API body. Cache breakpoints sit on the stable prefix: the system prompt, the tools,
        and the last two user turns (the newest one is the next request's prefix)."""
        body = {"model": self.model, "max_tokens": self.max_tokens or DEFAULT_MAX_TOKENS,
                "messages": _turns(messages), "stream": True}
        if messages and messages[0]["role"] == "system" and messages[0]["content"]:
            body["system"] = [{"type": "text", "text": messages[0]["content"], "cache_control": CACHED}]
        if tools:
            body["tools"] = [{"name": f["name"], "description": f.get("description") or "",
                              "input_schema": f.get("parameters") or {"type": "object"}}
                             for f in (t["function"] for t in tools)]
            body["tools"][-1]["cache_control"] = CACHED
        if self.thinking:  # the API wants room for the thinking within max_tokens, and no temperature
            body["thinking"] = {"type": "enabled", "budget_tokens": self.thinking}
            body["max_tokens"] = max(body["max_tokens"], self.thinking + 1024)
        elif self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def connect(self, anthropic):
        return anthropic.Anthropic(api_key=self.api_key, auth_token=self.auth_token, base_url=self.base_url,
                                   timeout=self.timeout, max_retries=0)

    def received(self, stream, url: str):
        import anthropic  # imported already, to send the request
        try:
            yield from stream
        except anthropic.APIStatusError as e:  # an error event in the stream
            raise self.refused(e, url) from None
        except Exception as e:
            raise broken(e, url, self.timeout) from None

    def refused(self, e, url: str, body: dict | None = None) -> Exception:
        error = e.body.get("error") if isinstance(e.body, dict) else None
        error = error if isinstance(error, dict) else {}
        status = e.status_code if e.status_code != 200 else STATUSES.get(error.get("type"), 500)
        return self.refusal(status, str(error.get("message") or e.message), e.response.headers, url)
