"""The Model (model.py) for any OpenAI-compatible Chat Completions API: the openai SDK sends the request; this
module reads every chunk, assembles each provider's dialect into one Reply, and retries what fails before it
is complete."""
import itertools
import json
import os
import re
import socket

from . import events
from .history import is_json_object
from .messages import NEUTRAL_ONLY
from .model import (ContextTooLong, Fault, LLMError, Reply, ToolCall, broken, context_error, refusal, root,
                    why, with_retries)

__all__ = ("LLM", "LLMError", "ContextTooLong", "Reply", "ToolCall")  # the last four: from model.py

TAG = "<tool_call>"
TEXT_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", re.S)


class LLM:
    backoff = 0.5  # seconds before the first retry, doubled for each next one up to 8 (Retry-After wins)

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None, *,
                 max_tokens: int | None = None, temperature: float | None = None,
                 timeout: float = 600.0, max_retries: int = 3):
        self.model, self.max_tokens, self.temperature = model, max_tokens, temperature
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.timeout, self.max_retries = timeout, max_retries  # timeout: seconds of silence
        self.stream_options = True  # dropped for the session once a provider rejects it
        self._client = None

    def stream(self, messages: list[dict], tools: list[dict] | None = None, on_event=None) -> Reply:
        """The Model protocol (model.py): one request, streamed."""
        # Sub-agents call this from several threads at once: all of one call stays in this frame.
        emit = on_event or (lambda event: None)
        messages = [_wire(m) for m in messages]
        return with_retries(lambda parts: self._attempt(messages, tools, parts, emit), _Assembler, emit,
                            self.max_retries, self.backoff)

    def _attempt(self, messages, tools, parts, emit) -> Reply:
        import openai  # here: it is a large share of a cold start
        if self._client is None:
            if not self.api_key:
                raise LLMError("no API key: set OPENAI_API_KEY or pass --api-key")
            # No retries in the SDK: stream() retries every fault itself, wherever it comes, and says so.
            self._client = openai.OpenAI(api_key=self.api_key, base_url=self.base_url,
                                         timeout=self.timeout, max_retries=0)
        body = {"model": self.model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True} if self.stream_options else None,
                "tools": tools or None,
                "max_tokens": self.max_tokens or None, "temperature": self.temperature}
        body = {k: v for k, v in body.items() if v is not None}
        try:
            # client.post is the SDK's documented way to send a raw body; unlike
            # chat.completions.create it skips a per-request type transform of every message,
            # which grows with the history (~30 ms at 200 messages).
            stream = self._client.post("/chat/completions", body=body, cast_to=object,
                                       stream=True, stream_cls=openai.Stream[object])
        except openai.APIStatusError as e:
            # the SDK has taken the body's "error" object out already
            message = str(e.body.get("message") or e.message) if isinstance(e.body, dict) else e.message
            if (self.stream_options and e.status_code in (400, 422)
                    and "stream_options" in f"{message} {e.body}"):
                self.stream_options = False
                return self._attempt(messages, tools, parts, emit)
            raise refusal(e.status_code, message, e.response.headers, key="OPENAI_API_KEY",
                          base_url=self.base_url, model=self.model) from None
        except openai.APITimeoutError:
            raise Fault(f"{self.base_url} did not answer within {self.timeout:g} s",
                         " (NANOCODER_TIMEOUT)") from None
        except openai.APIConnectionError as e:
            cause = root(e)
            # no such host: a typo, not a fault to retry
            if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME:
                raise LLMError(f"connection to {self.base_url} failed: no such host ({why(e)})") from None
            raise Fault(f"connection to {self.base_url} failed", f" ({why(e)})") from None
        with stream:  # closed even on Ctrl+C
            return self._read(stream.response, parts, emit)

    def _read(self, response, parts, emit) -> Reply:
        """Read here, not by the SDK, so a cut, a silence or a malformed chunk is a fault to retry."""
        # Chunks stay plain dicts: providers add and omit fields that typed objects would hide or reject.
        lines = self._lines(response)
        first = list(itertools.islice(lines, 2))  # the start of the body, for a line if it is no stream
        data, text = [], ""
        for line in itertools.chain(first, lines, [""]):  # "": the last event may lack its blank line
            if line.startswith("data:"):
                data.append(line[5:])
            if line or not data:  # comments, other fields, and whatever is not an event stream
                continue
            text, data = "\n".join(data).strip(), []
            if text == "[DONE]":
                break
            try:
                chunk = json.loads(text)
                if error := chunk.get("error"):  # an error object instead of a chunk
                    message = str(error.get("message") if isinstance(error, dict) else error)
                    raise context_error(message) or Fault("the provider reported an error mid-stream",
                                                            f": {message}")
                parts.add(chunk)
            except (ValueError, AttributeError, TypeError) as e:
                what = "that is not JSON" if isinstance(e, ValueError) else "of the wrong shape"
                raise Fault(f"{self.base_url} sent a chunk {what}", f": {text[:80]!r}") from None
            for event in parts.out:  # sent out here: a consumer's own error is not the provider's fault
                emit(event)
        kind = response.headers.get("content-type") or "no content type"
        if not parts.started and ("event-stream" not in kind or text == "[DONE]"):  # nothing cut: no stream
            start = " ".join(first).strip()[:100]
            raise LLMError(f"{self.base_url} answered {response.status_code} with {kind}, "
                           + ("but no reply in it" if "event-stream" in kind else "not an event stream")
                           + (f"; its body began {start!r}" if start else "; its body was empty"))
        if parts.finish_reason is None:
            raise Fault(f"the stream from {self.base_url} ended before the reply was complete")
        return parts.reply(emit)

    def _lines(self, response):
        try:
            yield from response.iter_lines()  # decoded with U+FFFD for bytes that are not UTF-8
        except Exception as e:
            raise broken(e, self.base_url, self.timeout) from None


def _wire(message: dict) -> dict:
    """A message of nanocoder's format as Chat Completions takes it: without the keys it does not know."""
    if not any(key in message for key in NEUTRAL_ONLY):
        return message  # most are sent as they are: no copy per message and request
    return {k: v for k, v in message.items() if k not in NEUTRAL_ONLY}


class _Assembler:
    """One Reply from streamed chunks in any provider's dialect; the last chunk's events to show, in `out`."""
    # A chunk of the wrong shape raises AttributeError or TypeError.

    def __init__(self):
        self.text, self.thought, self.calls, self.open, self.out = [], [], [], {}, []
        self.sizes = {}  # characters of arguments received so far, by id() of the call
        self.reasoning_field, self.finish_reason, self.started = "reasoning_content", None, False
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
        self.unshown, self.shown = "", 0  # text held back: it may be a call

    def add(self, chunk) -> None:
        self.started, self.out = True, []
        if usage := chunk.get("usage"):  # tested here, not in _usage: this runs for every chunk
            self._usage(usage)
        for choice in chunk.get("choices") or ():
            if usage := choice.get("usage"):
                self._usage(usage)
            delta = choice.get("delta") or {}
            for name in ("reasoning_content", "reasoning"):
                if isinstance(piece := delta.get(name), str) and piece:
                    self.reasoning_field = name  # sent back under the name it came in
                    self.thought.append(piece)
                    self.out.append(events.Reasoning(piece))
                    break
            content = delta.get("content")
            if isinstance(content, list):  # a list of parts: [{"type": "text", "text": ...}]
                content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
            if content and isinstance(content, str):
                self.text.append(content)
                self._show(content)
            for fragment in delta.get("tool_calls") or ():
                self._fragment(fragment)
            if finish := choice.get("finish_reason"):
                self.finish_reason = _string(finish, "finish_reason")

    def _show(self, piece: str) -> None:
        """Shown as it comes; from `<tool_call>` on, held: a call written as text is run, not shown."""
        if self.unshown.startswith(TAG):  # held from the tag on, whatever comes
            return
        self.unshown += piece
        if (at := self.unshown.find(TAG)) < 0:  # a tail that may begin the tag waits for the next piece
            at = self.unshown.rfind("<")  # the tag has one "<": only the last can begin it
            at = at if at >= 0 and TAG.startswith(self.unshown[at:]) else len(self.unshown)
        shown, self.unshown = self.unshown[:at], self.unshown[at:]
        self.shown += len(shown)
        if shown:
            self.out.append(events.Text(shown))

    def _usage(self, usage) -> None:
        # Running totals, a final count, or one per chunk: the largest seen is the total.
        if not isinstance(usage, dict):
            return
        details = usage.get("prompt_tokens_details")  # OpenAI, Kimi, OpenRouter, vLLM; then DeepSeek
        usage = {**usage,
                 "cached_tokens": (details.get("cached_tokens") if isinstance(details, dict) else None)
                 or usage.get("prompt_cache_hit_tokens")}
        for key in self.usage:
            if isinstance(usage.get(key), int):
                self.usage[key] = max(self.usage[key], usage[key])

    def _fragment(self, frag: dict) -> None:
        index, call_id = frag.get("index"), frag.get("id") or ""
        call = self.open.get(index)
        if call is None or (call_id and call.id and call_id != call.id):  # a new id at an old index
            call = self.open[index] = ToolCall(call_id, "", [])
            self.calls.append(call)
        call.id = _string(call.id or call_id, "a call's id")
        function = frag.get("function") or {}
        # the name may be repeated on every fragment: it is taken once
        call.name = _string(call.name or function.get("name") or "", "a call's name")
        args = function.get("arguments")
        args = json.dumps(args) if isinstance(args, dict) else args
        if isinstance(args, str) and args:
            size = self.sizes.get(id(call), 0)
            # a last chunk may re-send the complete arguments; only a piece at least half as long as
            # what came before can be that, so the join below stays linear in all that was received
            if (call.arguments and 2 * len(args) >= size and args[:1] == "{" and is_json_object(args)
                    and is_json_object("".join(call.arguments))):
                call.arguments, size = [], 0
            call.arguments.append(args)
            self.sizes[id(call)] = size + len(args)
        call.extra.update({k: v for k, v in frag.items() if k not in ("index", "id", "type", "function")})

    def reply(self, emit=lambda event: None) -> Reply:
        # Pieces are joined once, at the end: adding each to a growing string costs its square.
        reply = Reply("".join(self.text), "".join(self.thought), self.reasoning_field,
                      finish_reason=self.finish_reason, **self.usage)
        for call in self.calls:
            call.arguments = "".join(call.arguments) or "{}"  # "", null or missing: no parameters
            call.id = call.id or f"call_{os.urandom(6).hex()}"  # some local servers send none
        reply.tool_calls = [c for c in self.calls if c.name]
        held = reply.content[self.shown:]  # what _show held back: emitted now, less any call in it
        if not reply.tool_calls and TAG in reply.content:
            reply.content, reply.tool_calls = _text_calls(reply.content)
            held = TEXT_CALL.sub("", held) if reply.tool_calls else held
        if held.strip():
            emit(events.Text(held))
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


def _string(value, what: str) -> str:
    if not isinstance(value, str):  # read as a chunk of the wrong shape
        raise TypeError(f"{what} is not a string")
    return value
