"""The seam between the agent and a provider: the Model protocol every adapter implements (llm.py for Chat
Completions, anthropic_api.py for Anthropic's Messages API, demo.py's scripted model), the Reply it returns,
the errors it raises, and the retry loop and fault wording the adapters share."""
import importlib
import itertools
import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from . import events
from . import messages as msg
from .history import is_json_object

CONTEXT_ERRORS = re.compile(r"context.length|context.window|maximum context|too many tokens|"
                            r"prompt is too long|reduce the length|input is too long", re.I)
MAX_WAIT = 60  # seconds: a provider that asks for a longer pause is not waited for


class LLMError(Exception):
    """A failure the user can act on, worded as one line."""


class ContextTooLong(LLMError):
    """The provider refused the request because the history is longer than its window."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model sent it (not JSON if cut by the token limit)
    extra: dict = field(default_factory=dict)  # fields a provider wants echoed back (Gemini's extra_content)


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    reasoning_field: str = "reasoning_content"  # the name the provider used, for sending it back
    tool_calls: list[ToolCall] = field(default_factory=list)
    # "stop", "tool_calls", "length" (cut by the token limit), "content_filter", "refusal"...
    finish_reason: str | None = None
    prompt_tokens: int = 0  # all input tokens, cached ones included
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    thinking: list[dict] = field(default_factory=list)  # signed thinking blocks to send back (Anthropic)

    def message(self) -> msg.AssistantMessage:
        # arguments that are not a JSON object get an error result; the history keeps {}
        calls = [msg.tool_call(c.id, c.name, c.arguments if is_json_object(c.arguments) else "{}", c.extra)
                 for c in self.tool_calls]
        return msg.assistant(self.content, calls, self.reasoning, self.reasoning_field, self.thinking)


class Model(Protocol):
    """What the agent needs of a model: `model`, its name (/model may change it), and `max_tokens` (None: the
    provider's default). stream(messages, tools, on_event) sends one request (messages.py's format, tools as
    Chat Completions function schemas) and returns a complete Reply with usage counted, streaming events.Text
    and events.Reasoning, and an events.Retry before each retry. It raises ContextTooLong when the history is
    longer than the window (the agent compresses and asks again), else LLMError, one line. Sub-agents call it
    from several threads at once."""
    model: str
    max_tokens: int | None

    def stream(self, messages: list[msg.Message], tools: list[dict] | None = None,
               on_event: Callable[[events.Event], None] | None = None) -> Reply: ...


class Parts:
    """One reply as it streams in (an adapter's subclass reads its dialect into it): text, reasoning, the
    stop reason and token counts; the events the last piece has to show, in `out`."""
    usage_keys: tuple[str, ...] = ()

    def __init__(self):
        self.text, self.thought, self.out = [], [], []
        self.finish_reason, self.shown = None, 0
        self.usage = dict.fromkeys(self.usage_keys, 0)

    def _reasoning(self, piece: str) -> None:
        self.thought.append(piece)
        self.out.append(events.Reasoning(piece))

    def _count(self, usage: dict) -> None:
        # Running totals, a final count, or one per chunk: the largest seen is the total.
        for key in self.usage:
            if isinstance(usage.get(key), int):
                self.usage[key] = max(self.usage[key], usage[key])


class Adapter:
    """What the adapters share: settings, one request streamed with retries, the SDK's errors as faults to
    retry or one line, the provider's model list (models). A subclass names its SDK's package, the variable
    its key comes from, the path it posts to and what it receives (unit); it builds the body (request) and
    the client (connect), yields what the stream brings (received) for Parts, words HTTP errors (refused)."""
    backoff = 0.5  # seconds before the first retry, doubled for each next one up to 8 (Retry-After wins)
    package = key = path = unit = ""
    Parts = Parts

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None, *,
                 max_tokens: int | None = None, temperature: float | None = None,
                 timeout: float = 600.0, max_retries: int = 3):
        self.model, self.max_tokens, self.temperature = model, max_tokens, temperature
        self.api_key, self.base_url = api_key, base_url
        self.timeout, self.max_retries = timeout, max_retries  # timeout: seconds of silence
        self._client, self._models, self.unlisted = None, None, ""  # the provider's models, and why none

    def stream(self, messages: list[msg.Message], tools: list[dict] | None = None, on_event=None) -> Reply:
        """The Model protocol: one request, streamed; a Fault is asked again after a pause (a Retry)."""
        # Sub-agents call this from several threads at once: all of one call stays in this frame.
        emit = on_event or (lambda event: None)
        body = self.request(messages, tools)
        for retry in itertools.count():
            parts = self.Parts()  # afresh: a half-received tool call must never reach the caller
            try:
                return self._attempt(body, parts, emit)
            except Fault as fault:
                if parts.finish_reason:  # the reply was complete: what broke after it (usage, [DONE]) is
                    return parts.reply()  # no loss
                said, made = f"{fault}{fault.detail}", f"{retry} {'retry' if retry == 1 else 'retries'}"
                if fault.wait > MAX_WAIT:
                    raise LLMError(f"{said}; asked to wait {fault.wait:.0f} s; not waiting"
                                   + (f" (after {made})" if retry else "")) from None
                if retry >= self.max_retries:
                    raise LLMError(f"{said}; gave up after {made}" if retry else said) from None
                import random  # here, like email.utils below: neither is needed to start
                delay = fault.wait or min(self.backoff * 2 ** retry, 8) * (1 - random.random() / 4)
                of = f"retry {retry + 1} of {self.max_retries}"
                emit(events.Retry(f"{fault}; retrying in {delay:.1f} s ({of})",
                                  discarded=bool(parts.shown or parts.thought)))
                time.sleep(delay)

    def models(self) -> list[str]:
        """The names the provider lists (GET /models), asked once; none if it cannot say (why: unlisted)."""
        if self._models is None:
            try:  # a list is short work: a provider silent for 10 s has none to give
                client = self._client or self.connect(importlib.import_module(self.package))
                self._models = sorted(str(m.id) for m in client.with_options(timeout=10).models.list())
            except Exception as e:  # no SDK, no such endpoint, a list of another shape: no list
                self._models, self.unlisted = [], f"the provider lists no models ({why(e).splitlines()[0]})"
        return self._models

    def _attempt(self, body: dict, parts: Parts, emit) -> Reply:
        try:
            sdk = importlib.import_module(self.package)  # here: it is a large share of a cold start
        except ImportError:
            raise LLMError(f"the {self.package} provider needs its SDK: "
                           f"pip install 'nanocoderagent[{self.package}]'") from None
        if self._client is None:
            self._client = self.connect(sdk)  # with no retries of its own: stream() does them, and says so
        url = str(self._client.base_url).rstrip("/")
        try:
            # client.post is the SDK's documented way to send a raw body; unlike its typed calls it skips a
            # per-request transform of every message, which grows with the history (~30 ms at 200 messages).
            stream = self._client.post(self.path, body=body, cast_to=object, stream=True,
                                       stream_cls=sdk.Stream[object])
        except sdk.APIStatusError as e:
            error = self.refused(e, url, body)
            if error is None:  # mended in body: asked again at once
                return self._attempt(body, parts, emit)
            raise error from None
        except sdk.APITimeoutError:
            raise Fault(f"{url} did not answer within {self.timeout:g} s", " (NANOCODER_TIMEOUT)") from None
        except sdk.APIConnectionError as e:
            cause = root(e)
            if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME:  # a typo: not retried
                raise LLMError(f"connection to {url} failed: no such host ({why(e)})") from None
            raise Fault(f"connection to {url} failed", f" ({why(e)})") from None
        with stream:  # closed even on Ctrl+C
            for item in self.received(stream, url):
                try:
                    parts.add(item)
                except (AttributeError, TypeError, KeyError, ValueError):  # quoted as it came, in JSON
                    came = json.dumps(item, ensure_ascii=False, default=str)[:80]
                    raise Fault(f"{url} sent {self.unit} of the wrong shape", f": {came!r}") from None
                for event in parts.out:  # sent out here: a consumer's own error is not the provider's fault
                    emit(event)
        if parts.finish_reason is None:
            raise Fault(f"the stream from {url} ended before the reply was complete")
        return parts.reply()

    def refusal(self, status: int, message: str, headers, url: str) -> Exception:
        """An HTTP error as a fault to retry, or as one line at once."""
        if status in (400, 413) and (too_long := context_error(message)):
            return too_long
        retryable = status in (408, 409, 429) or status >= 500  # 529: Anthropic is overloaded
        if headers.get("x-should-retry", str(retryable).lower()) == "true":  # the provider's own say first
            why = "rate limited by the provider (429)" if status == 429 else f"the provider answered {status}"
            return Fault(why, f": {message}", retry_after(headers))
        if status in (401, 403):
            return LLMError(f"the provider refused the API key ({status}: {message}); "
                            f"check {self.key} / --api-key and the base URL {url}")
        if status == 404:
            return LLMError(f"model {self.model!r} was not found at {url} ({message})")
        return LLMError(f"the provider answered {status}: {message}")


class Fault(Exception):
    """Something broke before the reply was complete: worth asking again. The last line adds the detail."""
    def __init__(self, why: str, detail: str = "", wait: float = 0.0):
        super().__init__(why)
        self.detail, self.wait = detail, wait  # wait: seconds the provider asked for (Retry-After)


def context_error(message: str) -> ContextTooLong | None:
    if CONTEXT_ERRORS.search(message):
        return ContextTooLong(f"the conversation is longer than the model's window ({message})")


def retry_after(headers) -> float:
    ms, value = headers.get("retry-after-ms"), headers.get("retry-after")
    try:
        seconds = float(ms) / 1000 if ms else float(value)
    except (TypeError, ValueError):
        from email.utils import parsedate_to_datetime
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = 0.0
    return seconds if seconds >= 0 else 0.0  # NaN too


def broken(e: BaseException, url: str, timeout: float) -> Fault:
    """The HTTP library's error mid-stream (httpx's or another's): a silence or a cut."""
    if isinstance(root(e), TimeoutError):
        return Fault(f"{url} sent nothing for {timeout:g} s", " (NANOCODER_TIMEOUT)")
    return Fault(f"the stream from {url} broke off", f" ({why(e)})")


def root(e: BaseException) -> BaseException:
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    return e


def why(e: BaseException) -> str:
    cause = root(e)
    return str(cause) or type(cause).__name__
