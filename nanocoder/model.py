"""The seam between the agent and a provider: the Model protocol every adapter implements (llm.py for Chat
Completions, anthropic_api.py for Anthropic's Messages API, demo.py's scripted model), the Reply it returns,
the errors it raises, and the retry loop and fault wording the adapters share."""
import itertools
import re
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


class Fault(Exception):
    """Something broke before the reply was complete: worth asking again. The last line adds the detail."""
    def __init__(self, why: str, detail: str = "", wait: float = 0.0):
        super().__init__(why)
        self.detail, self.wait = detail, wait  # wait: seconds the provider asked for (Retry-After)


def with_retries(attempt, new_parts, emit, max_retries: int, backoff: float) -> Reply:
    """attempt(parts) until it returns a Reply; each Fault is retried after a pause, said as a Retry event.
    parts (from new_parts(), fresh each time) assembles one reply: its finish_reason, shown (characters
    of text emitted), thought (reasoning pieces) and reply(emit) are read here."""
    for retry in itertools.count():
        parts = new_parts()
        try:
            return attempt(parts)
        except Fault as fault:  # asked again: a half-received tool call must never reach the caller
            # the reply was complete: what broke after it (usage, [DONE]) costs nothing
            if parts.finish_reason:
                return parts.reply(emit)
            said, made = f"{fault}{fault.detail}", f"{retry} {'retry' if retry == 1 else 'retries'}"
            if fault.wait > MAX_WAIT:
                raise LLMError(f"{said}; asked to wait {fault.wait:.0f} s; not waiting"
                               + (f" (after {made})" if retry else "")) from None
            if retry >= max_retries:
                raise LLMError(f"{said}; gave up after {made}" if retry else said) from None
            import random  # here, like email.utils below: neither is needed to start
            delay = fault.wait or min(backoff * 2 ** retry, 8) * (1 - random.random() / 4)
            emit(events.Retry(f"{fault}; retrying in {delay:.1f} s (retry {retry + 1} of {max_retries})",
                              discarded=bool(parts.shown or parts.thought)))
            time.sleep(delay)


def refusal(status: int, message: str, headers, *, key: str, base_url: str, model: str) -> Exception:
    """An HTTP error as a fault to retry, or as one line at once; key names where the API key comes from."""
    if status in (400, 413) and (too_long := context_error(message)):
        return too_long
    retryable = status in (408, 409, 429) or status >= 500  # 529: Anthropic is overloaded
    if headers.get("x-should-retry", str(retryable).lower()) == "true":  # the provider's own say first
        why = "rate limited by the provider (429)" if status == 429 else f"the provider answered {status}"
        return Fault(why, f": {message}", retry_after(headers))
    if status in (401, 403):
        return LLMError(f"the provider refused the API key ({status}: {message}); "
                        f"check {key} / --api-key and the base URL {base_url}")
    if status == 404:
        return LLMError(f"model {model!r} was not found at {base_url} ({message})")
    return LLMError(f"the provider answered {status}: {message}")


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
