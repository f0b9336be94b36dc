"""Streaming client for any OpenAI-compatible Chat Completions API.

The openai SDK does HTTP, SSE parsing and retries before the first byte (408/409/429/5xx and
connection errors, honouring Retry-After); this module makes those retries visible, retries a
stream that breaks off, assembles the fragments of every provider's dialect into one Reply, and
turns failures into one sentence a user can act on. It never prints: text goes to callbacks.
"""
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field

from .history import is_json_object

CONTEXT_ERRORS = re.compile(r"context.length|context.window|maximum context|too many tokens|"
                            r"prompt is too long|reduce the length|input is too long", re.I)
TAG = "<tool_call>"
TEXT_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", re.S)


class LLMError(Exception):
    """A failure the user can act on, worded as one line."""


class ContextTooLong(LLMError):
    """The provider refused the request because the history is longer than its window."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model sent it
    extra: dict = field(default_factory=dict)  # fields a provider wants echoed back (Gemini's extra_content)


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    reasoning_field: str = "reasoning_content"  # the name the provider used, for sending it back
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def message(self) -> dict:
        """The assistant message to append to the history."""
        # null content is only valid beside tool calls; an empty answer stays "".
        msg = {"role": "assistant", "content": self.content or (None if self.tool_calls else "")}
        if self.reasoning:  # thinking models of DeepSeek and Kimi answer 400 without it
            msg[self.reasoning_field] = self.reasoning
        if self.tool_calls:
            msg["tool_calls"] = [
                {**c.extra, "id": c.id, "type": "function",
                 # arguments that are not a JSON object get an error result; the history keeps {}
                 "function": {"name": c.name, "arguments": c.arguments if is_json_object(c.arguments) else "{}"}}
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
        self.timeout, self.max_retries = timeout, max_retries  # timeout: seconds of silence
        self.stream_options = True  # dropped for the session once a provider rejects it
        self._client = None
        self._local = threading.local()  # sub-agents stream from pool threads, each with its callback

    @property
    def client(self):
        # Imported here: `import openai` is a large share of a cold start.
        if self._client is None:
            if not self.api_key:
                raise LLMError("no API key: set OPENAI_API_KEY or pass --api-key")
            self._client = _client_class()(self, api_key=self.api_key, base_url=self.base_url,
                                           timeout=self.timeout, max_retries=self.max_retries)
        return self._client

    def stream(self, messages: list[dict], tools: list[dict] | None = None,
               on_text=None, on_reasoning=None, on_retry=None) -> Reply:
        """Send one request and stream the answer; the callbacks get each new piece, and a line
        for every retry. A stream that breaks off is asked again: its half-received tool calls
        never reach the caller."""
        self._local.on_retry = on_retry
        for attempt in range(self.max_retries + 1):
            try:
                return self._stream_once(messages, tools, on_text, on_reasoning)
            except _Dropped as e:
                if attempt == self.max_retries:
                    raise LLMError(f"{e}; gave up after {attempt + 1} attempts") from None
                delay = min(2 ** attempt, 8)
                on_retry and on_retry(f"{e}; retrying in {delay} s")
                time.sleep(delay)

    def _stream_once(self, messages, tools, on_text, on_reasoning) -> Reply:
        import openai
        body = {"model": self.model, "messages": messages, "stream": True}
        if self.stream_options:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = tools
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        parts = _Assembler(on_text, on_reasoning)
        try:
            # client.post is the SDK's documented way to send a raw body; unlike
            # chat.completions.create it skips a per-request type transform of every message,
            # which grows with the history (~30 ms at 200 messages). Chunks stay plain dicts:
            # providers add and omit fields that typed objects would hide or reject.
            stream = self.client.post("/chat/completions", body=body, cast_to=object,
                                      stream=True, stream_cls=openai.Stream[object])
            with stream:  # closed even on Ctrl+C
                for chunk in stream:
                    parts.add(chunk)
        except openai.APIStatusError as e:
            message = _error_message(e)
            if self.stream_options and e.status_code in (400, 422) and "stream_options" in f"{message} {e.body}":
                self.stream_options = False
                return self._stream_once(messages, tools, on_text, on_reasoning)
            if e.status_code in (400, 413) and CONTEXT_ERRORS.search(message):
                raise ContextTooLong(f"the conversation is longer than the model's window ({message})") from None
            raise LLMError(self._explain_status(e.status_code, message)) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as e:
            if parts.started:  # the SDK retries only before the first byte; after it, we do
                raise _Dropped(f"the stream broke off ({_cause(e)})", parts) from None
            if isinstance(e, openai.APITimeoutError):
                raise LLMError(f"{self.base_url} did not answer within {self.timeout:.0f} s "
                               f"(NANOCODER_TIMEOUT)") from None
            raise LLMError(f"connection to {self.base_url} failed: {_cause(e)}") from None
        except openai.APIError as e:  # an error object inside the stream
            raise LLMError(f"the provider reported an error mid-stream: {_error_message(e)}") from None
        if parts.finish_reason is None:
            raise _Dropped("the stream ended before the reply was complete", parts)
        return parts.reply()

    def _retrying(self, delay: float, retry: int, answered: bool) -> None:
        on_retry = getattr(self._local, "on_retry", None)
        if on_retry:
            status = getattr(self._local, "status", None)
            why = (f"the provider answered {status or 'with an error'}" if answered
                   else f"no answer from {self.base_url}")
            on_retry(f"{why}; retrying in {delay:.1f} s (retry {retry} of {self.max_retries})")

    def _explain_status(self, status: int, message: str) -> str:
        if status in (401, 403):
            return (f"the provider refused the API key ({status}: {message}); "
                    f"check OPENAI_API_KEY / --api-key and the base URL {self.base_url}")
        if status == 404:
            return f"model {self.model!r} was not found at {self.base_url} ({message})"
        if status == 429:
            return f"rate limited by the provider after {self.max_retries} retries ({message})"
        return f"the provider answered {status}: {message}"


class _Dropped(Exception):
    """A stream that broke off after it began: asked again, as the SDK only retries before."""
    def __init__(self, why: str, parts):
        # Text already on the screen stays there; the line says it does not count.
        super().__init__(why + ("; the text shown above is discarded" if parts.text or parts.thought else ""))


def _client_class():
    """The SDK's client, reporting each of its retries before it sleeps on it."""
    import openai

    class Client(openai.OpenAI):
        def __init__(self, llm, **kwargs):
            super().__init__(**kwargs)
            self._llm = llm

        def _sleep_for_retry(self, *, response=None, **kwargs):
            # The one hook that sees the failed response: its status goes into the retry line.
            self._llm._local.status = response.status_code if response is not None else None
            return super()._sleep_for_retry(response=response, **kwargs)

        def _calculate_retry_timeout(self, remaining_retries, *args, **kwargs):
            delay = super()._calculate_retry_timeout(remaining_retries, *args, **kwargs)
            answered = (list(args[1:2]) or [kwargs.get("response_headers")])[0] is not None
            self._llm._retrying(delay, self.max_retries - remaining_retries + 1, answered)
            return delay

    return Client


class _Assembler:
    """Builds one Reply from streamed chunks, in any provider's dialect: calls keyed by index or
    by id, whole calls in one delta, names and ids repeated on every fragment, complete arguments
    re-sent at the end, usage anywhere or nowhere, content as a list of parts."""

    def __init__(self, on_text, on_reasoning):
        self.on_text, self.on_reasoning = on_text, on_reasoning
        self.text, self.thought, self.calls, self.open = [], [], [], {}
        self.reasoning_field, self.finish_reason, self.started = "reasoning_content", None, False
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.unshown, self.shown, self.hiding = "", 0, False  # text held back: it may be a call

    def add(self, chunk) -> None:
        self.started = True
        if not isinstance(chunk, dict):
            return
        self._usage(chunk.get("usage"))
        for choice in chunk.get("choices") or []:
            self._usage(choice.get("usage"))
            delta = choice.get("delta") or {}
            for name in ("reasoning_content", "reasoning"):
                piece = delta.get(name)
                if isinstance(piece, str) and piece:
                    self.reasoning_field = name
                    self.thought.append(piece)
                    self.on_reasoning and self.on_reasoning(piece)
                    break
            piece = _text(delta.get("content"))
            if piece:
                self.text.append(piece)
                self._show(piece)
            for fragment in delta.get("tool_calls") or []:
                self._fragment(fragment)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def _show(self, piece: str) -> None:
        """Text goes to the screen as it comes, but from a `<tool_call>` (or what may begin one)
        on it waits for reply(): a call written as text is run, not shown."""
        if self.hiding:
            return
        self.unshown += piece
        at = self.unshown.find(TAG)
        if at >= 0:
            self.hiding = True
        elif "<" in self.unshown:  # a tail that may begin the tag waits for the next piece
            at = len(self.unshown) - next((n for n in range(len(TAG) - 1, 0, -1) if self.unshown.endswith(TAG[:n])), 0)
        else:
            at = len(self.unshown)
        shown, self.unshown = self.unshown[:at], self.unshown[at:]
        self.shown += len(shown)
        shown and self.on_text and self.on_text(shown)

    def _usage(self, usage) -> None:
        # Running totals, a final count, or one per chunk: the largest seen is the total.
        for key in self.usage:
            if isinstance(usage, dict) and isinstance(usage.get(key), int):
                self.usage[key] = max(self.usage[key], usage[key])

    def _fragment(self, frag: dict) -> None:
        index, call_id = frag.get("index"), frag.get("id") or ""
        call = self.open.get(index)
        if call is None or (call_id and call.id and call_id != call.id):  # a new id at an old index
            call = self.open[index] = ToolCall(call_id, "", [])
            self.calls.append(call)
        call.id = call.id or call_id
        function = frag.get("function") or {}
        call.name = call.name or function.get("name") or ""  # repeated on every fragment: once
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments)
        if isinstance(arguments, str) and arguments:
            if call.arguments and arguments[:1] == "{" and is_json_object(arguments) and is_json_object("".join(call.arguments)):
                call.arguments = []  # a last chunk re-sent the complete arguments
            call.arguments.append(arguments)
        call.extra.update({k: v for k, v in frag.items() if k not in ("index", "id", "type", "function")})

    def reply(self) -> Reply:
        # Pieces are joined once, at the end: adding each to a growing string costs its square.
        reply = Reply("".join(self.text), "".join(self.thought), self.reasoning_field,
                      finish_reason=self.finish_reason, **self.usage)
        for call in self.calls:
            call.arguments = "".join(call.arguments) or "{}"  # "", null or missing: no parameters
            call.id = call.id or f"call_{os.urandom(6).hex()}"  # some local servers send none
        reply.tool_calls = [c for c in self.calls if c.name]
        held = reply.content[self.shown:]  # what _show held back
        if not reply.tool_calls and TAG in reply.content:
            reply.content, reply.tool_calls = _text_calls(reply.content)
            held = TEXT_CALL.sub("", held) if reply.tool_calls else held
        held.strip() and self.on_text and self.on_text(held)
        return reply


def _text_calls(content: str):
    """Local models that write `<tool_call>{"name": ..., "arguments": ...}</tool_call>` as text."""
    calls = []
    for match in TEXT_CALL.finditer(content):
        try:
            data = json.loads(match.group(1))
            arguments = data.get("arguments", data.get("parameters", {}))
            calls.append(ToolCall(f"call_{os.urandom(6).hex()}", str(data["name"]),
                                  arguments if isinstance(arguments, str) else json.dumps(arguments)))
        except (ValueError, KeyError, AttributeError):
            return content, []  # not what it looked like: leave the text alone
    return TEXT_CALL.sub("", content).strip(), calls


def _text(content) -> str:
    if isinstance(content, list):  # a list of parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


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
