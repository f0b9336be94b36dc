"""The Model (model.py) for any OpenAI-compatible Chat Completions API: the openai SDK sends the request; this
module reads every chunk, assembles each provider's dialect into one Reply, retries what fails unfinished."""
import itertools
import json
import os

from . import events
from .history import is_json_object
from .messages import NEUTRAL_ONLY
from .model import Adapter, ContextTooLong, Fault, LLMError, Parts, Reply, ToolCall, broken, context_error

__all__ = ("LLM", "LLMError", "ContextTooLong", "Reply", "ToolCall")  # the last four: from model.py

def _wire(message: dict) -> dict:
    """A message of nanocoder's format as Chat Completions takes it: without the keys it does not know."""
    if not any(key in message for key in NEUTRAL_ONLY):
        return message  # most are sent as they are: no copy per message and request
    return {k: v for k, v in message.items() if k not in NEUTRAL_ONLY}


class _Assembler(Parts):
    """One Reply from streamed chunks in any provider's dialect."""
    # A chunk of the wrong shape raises AttributeError or TypeError.
    usage_keys = ("prompt_tokens", "completion_tokens", "cached_tokens")

    def __init__(self):
        super().__init__()
        self.calls, self.open, self.reasoning_field = [], {}, "reasoning_content"
        self.sizes = {}  # characters of arguments received so far, by id() of the call

    def add(self, chunk) -> None:
        self.out = []
        if usage := chunk.get("usage"):  # tested here, not in _usage: this runs for every chunk
            self._usage(usage)
        for choice in chunk.get("choices") or ():
            if usage := choice.get("usage"):
                self._usage(usage)
            delta = choice.get("delta") or {}
            for name in ("reasoning_content", "reasoning"):
                if isinstance(piece := delta.get(name), str) and piece:
                    self.reasoning_field = name  # sent back under the name it came in
                    self._reasoning(piece)
                    break
            content = delta.get("content")
            if isinstance(content, list):  # a list of parts: [{"type": "text", "text": ...}]
                content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
            if content and isinstance(content, str):
                self.text.append(content)
                self.shown += len(content)
                self.out.append(events.Text(content))
            for fragment in delta.get("tool_calls") or ():
                self._fragment(fragment)
            if finish := choice.get("finish_reason"):
                self.finish_reason = _string(finish, "finish_reason")

    def _usage(self, usage) -> None:
        if not isinstance(usage, dict):
            return
        details = usage.get("prompt_tokens_details")  # OpenAI, Kimi, OpenRouter, vLLM; then DeepSeek
        self._count({**usage, "cached_tokens": (details.get("cached_tokens") if isinstance(details, dict)
                                                else None) or usage.get("prompt_cache_hit_tokens")})

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

    def reply(self) -> Reply:
        # Pieces are joined once, at the end: adding each to a growing string costs its square.
        reply = Reply("".join(self.text), "".join(self.thought), self.reasoning_field,
                      finish_reason=self.finish_reason, **self.usage)
        for call in self.calls:
            call.arguments = "".join(call.arguments) or "{}"  # "", null or missing: no parameters
            call.id = call.id or f"call_{os.urandom(6).hex()}"  # some local servers send none
        reply.tool_calls = [c for c in self.calls if c.name]
        return reply


def _string(value, what: str) -> str:
    if not isinstance(value, str):  # read as a chunk of the wrong shape
        raise TypeError(f"{what} is not a string")
    return value


class LLM(Adapter):
    package, key, path, Parts = "openai", "OPENAI_API_KEY", "/chat/completions", _Assembler
    unit = "a chunk"
    stream_options = True  # dropped for the session once a provider rejects it

    def request(self, messages: list[dict], tools: list[dict] | None = None) -> dict:
        body = {"model": self.model, "messages": [_wire(m) for m in messages], "stream": True,
                "stream_options": {"include_usage": True} if self.stream_options else None,
                "tools": tools or None, "max_tokens": self.max_tokens or None,
                "temperature": self.temperature}
        return {k: v for k, v in body.items() if v is not None}

    def connect(self, openai):
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise LLMError("no API key: set OPENAI_API_KEY or pass --api-key")
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.timeout, max_retries=0)

    def refused(self, e, url: str, body: dict | None = None) -> Exception | None:
        """The HTTP error as model.refusal words it; None when body is mended to be sent again."""
        # the SDK has taken the body's "error" object out already
        message = str(e.body.get("message") or e.message) if isinstance(e.body, dict) else e.message
        if body and "stream_options" in body and e.status_code in (400, 422) \
                and "stream_options" in f"{message} {e.body}":
            self.stream_options = False
            del body["stream_options"]
            return None
        return self.refusal(e.status_code, message, e.response.headers, url)

    def received(self, stream, url: str):
        """The chunks, read here, not by the SDK: a cut, a silence, a malformed chunk is a fault to retry."""
        # Chunks stay plain dicts: providers add and omit fields that typed objects would hide or reject.
        response = stream.response
        lines = self._lines(response, url)
        first = list(itertools.islice(lines, 2))  # the start of the body, for a line if it is no stream
        data, text, started = [], "", False
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
            except ValueError:
                raise Fault(f"{url} sent a chunk that is not JSON", f": {text[:80]!r}") from None
            if isinstance(chunk, dict) and (error := chunk.get("error")):  # an error object, not a chunk
                message = str(error.get("message") if isinstance(error, dict) else error)
                raise context_error(message) or Fault("the provider reported an error mid-stream",
                                                        f": {message}")
            started = True
            yield chunk
        kind = response.headers.get("content-type") or "no content type"
        if not started and ("event-stream" not in kind or text == "[DONE]"):  # nothing cut: no stream
            start = " ".join(first).strip()[:100]
            raise LLMError(f"{url} answered {response.status_code} with {kind}, "
                           + ("but no reply in it" if "event-stream" in kind else "not an event stream")
                           + (f"; its body began {start!r}" if start else "; its body was empty"))

    def _lines(self, response, url: str):
        try:
            yield from response.iter_lines()  # decoded with U+FFFD for bytes that are not UTF-8
        except Exception as e:
            raise broken(e, url, self.timeout) from None
