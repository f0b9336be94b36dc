"""nanocoder's own conversation format, kept, saved and handed to a Model: Chat Completions' shape (old
sessions load as they are) plus keys only nanocoder reads (NEUTRAL_ONLY), which the adapters do not send: a
tool message's `is_error`, an assistant's signed `thinking`, the `summary` mark on what compression wrote,
the system message's last `environment`, and a user message's `checkpoint` (its turn's snapshots)."""
from typing import Literal, TypedDict


class Function(TypedDict):
    name: str
    arguments: str  # a JSON object, as text


class ToolCallPart(TypedDict):
    id: str  # unique in the history; the tool message that answers it carries the same id
    type: Literal["function"]
    function: Function
    # and any field a provider wants echoed back (Gemini's extra_content)


class _System(TypedDict):
    role: Literal["system"]  # the first message, and only there
    content: str


class SystemMessage(_System, total=False):
    environment: str  # folder, date, git status, as the model last heard of them


class _User(TypedDict):
    role: Literal["user"]
    content: str


class UserMessage(_User, total=False):
    summary: bool  # present (True) on the summary that compression put in place of older messages
    checkpoint: str  # the mark of the turn's snapshots (checkpoints.Step), for /rewind


class _Assistant(TypedDict):
    role: Literal["assistant"]
    content: str | None  # None only beside tool calls


class AssistantMessage(_Assistant, total=False):  # the keys below only when there is something in them
    tool_calls: list[ToolCallPart]
    reasoning_content: str  # reasoning text, under the name the provider sent it in (or "reasoning")
    thinking: list[dict]  # Anthropic's thinking blocks, as sent, with their signatures
    summary: bool  # present (True) on the acknowledgement of a summary


class _Tool(TypedDict):
    role: Literal["tool"]  # right after the assistant message whose call it answers, one for each call
    tool_call_id: str
    content: str


class ToolMessage(_Tool, total=False):
    is_error: bool  # present (True) only for a result that is an error


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage
# keys Chat Completions does not know
NEUTRAL_ONLY = ("is_error", "thinking", "summary", "environment", "checkpoint")


def system(text: str) -> SystemMessage:
    return {"role": "system", "content": text}


def user(text: str) -> UserMessage:
    return {"role": "user", "content": text}


def assistant(text: str = "", calls: list[ToolCallPart] = (), reasoning: str = "",
              reasoning_field: str = "reasoning_content", thinking: list[dict] = ()) -> AssistantMessage:
    # null content is only valid beside tool calls; an empty answer stays "".
    msg = {"role": "assistant", "content": text or (None if calls else "")}
    if thinking:  # signed: sent back verbatim, the reasoning text is inside
        msg["thinking"] = list(thinking)
    elif reasoning:  # thinking models of DeepSeek and Kimi answer 400 without it
        msg[reasoning_field] = reasoning
    if calls:
        msg["tool_calls"] = list(calls)
    return msg


def tool_call(call_id: str, name: str, arguments: str, extra: dict | None = None) -> ToolCallPart:
    return {**(extra or {}), "id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def tool_result(call_id: str, text: str, is_error: bool = False) -> ToolMessage:
    msg = {"role": "tool", "tool_call_id": call_id, "content": text}
    if is_error:
        msg["is_error"] = True
    return msg
