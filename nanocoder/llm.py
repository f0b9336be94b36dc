"""Streaming client for any OpenAI-compatible Chat Completions API.

The openai SDK does HTTP, SSE parsing and retries (408/409/429/5xx, honouring Retry-After);
this module assembles streamed fragments into one Reply and turns the SDK's exceptions into
one clear sentence a user can act on. It never prints: text arrives through callbacks.
"""
import json
import os
from dataclasses import dataclass, field


class LLMError(Exception):
    """A failure the user can act on, worded as one line."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model sent it


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def message(self) -> dict:
        """The assistant message to append to the history."""
        # null content is only valid beside tool calls; an empty answer stays "".
        msg = {"role": "assistant", "content": self.content or (None if self.tool_calls else "")}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls]
        return msg


class LLM:
    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None, *,
                 max_tokens: int | None = None, temperature: float | None = None,
                 timeout: float = 600.0, max_retries: int = 3):
        self.model = model
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.max_tokens, self.temperature = max_tokens, temperature
        self.timeout, self.max_retries = timeout, max_retries
        self._client = None

    @property
    def client(self):
        # Imported here: `import openai` is a large share of a cold start.
        if self._client is None:
            if not self.api_key:
                raise LLMError("no API key: set OPENAI_API_KEY or pass --api-key")
            import openai
            self._client = openai.OpenAI(api_key=self.api_key, base_url=self.base_url,
                                         timeout=self.timeout, max_retries=self.max_retries)
        return self._client

    def stream(self, messages: list[dict], tools: list[dict] | None = None,
               on_text=None, on_reasoning=None) -> Reply:
        """Send one request and stream the answer; on_text/on_reasoning get each new piece."""
        import openai
        body = {"model": self.model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}}
        if tools:
            body["tools"] = tools
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        reply, text, thought, calls = Reply(), [], [], {}
        try:
            # client.post is the SDK's documented way to send a raw body; unlike
            # chat.completions.create it skips a per-request type transform of every message,
            # which grows with the history (~30 ms at 200 messages).
            from openai.types.chat import ChatCompletionChunk
            stream = self.client.post("/chat/completions", body=body, cast_to=ChatCompletionChunk,
                                      stream=True, stream_cls=openai.Stream[ChatCompletionChunk])
            with stream:  # closed even on Ctrl+C
                for chunk in stream:
                    _merge_chunk(chunk, reply, text, thought, calls, on_text, on_reasoning)
        except openai.APIStatusError as e:
            raise LLMError(self._explain_status(e)) from None
        except openai.APITimeoutError:
            raise LLMError(f"{self.base_url} did not answer within {self.timeout:.0f} s") from None
        except openai.APIConnectionError as e:
            raise LLMError(f"connection to {self.base_url} failed: {_cause(e)}") from None
        if reply.finish_reason is None:
            # A stream that ends without a finish reason was cut off: a half-received tool
            # call must never run, so the whole reply is refused.
            raise LLMError("the provider's stream ended before the reply was complete")
        # Pieces are joined once, at the end: adding each to a growing string costs its square.
        reply.content, reply.reasoning = "".join(text), "".join(thought)
        for _, (call, arguments) in sorted(calls.items()):
            call.arguments = "".join(arguments)
            call.id = call.id or f"call_{os.urandom(6).hex()}"  # some local servers send none
            reply.tool_calls.append(call)
        return reply

    def complete(self, messages: list[dict]) -> str:
        """A plain completion with no tools, e.g. to summarise a conversation."""
        return self.stream(messages).content

    def _explain_status(self, e) -> str:
        message = _error_message(e)
        if e.status_code in (401, 403):
            return (f"the provider refused the API key ({e.status_code}: {message}); "
                    f"check OPENAI_API_KEY / --api-key and the base URL {self.base_url}")
        if e.status_code == 404:
            return f"model {self.model!r} was not found at {self.base_url} ({message})"
        if e.status_code == 429:
            return f"rate limited by the provider after {self.max_retries} retries ({message})"
        return f"the provider answered {e.status_code}: {message}"


def _merge_chunk(chunk, reply: Reply, text: list, thought: list, calls: dict,
                 on_text, on_reasoning) -> None:
    """Add one streamed chunk: its pieces of text, reasoning and tool calls (by index) go to lists."""
    usage = getattr(chunk, "usage", None)
    if usage:
        reply.prompt_tokens = usage.prompt_tokens or 0
        reply.completion_tokens = usage.completion_tokens or 0
    for choice in chunk.choices or []:
        delta = choice.delta
        if delta is not None:
            reasoning = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
            if reasoning:
                thought.append(reasoning)
                on_reasoning and on_reasoning(reasoning)
            if delta.content:
                text.append(delta.content)
                on_text and on_text(delta.content)
            for frag in delta.tool_calls or []:
                call, arguments = calls.setdefault(frag.index, (ToolCall("", "", ""), []))
                call.id = call.id or frag.id or ""
                if frag.function:
                    call.name = call.name or frag.function.name or ""
                    arguments.append(frag.function.arguments or "")
        if choice.finish_reason:
            reply.finish_reason = choice.finish_reason


def _error_message(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    return str(getattr(e, "message", e))


def _cause(e) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    return str(e) or type(e).__name__
