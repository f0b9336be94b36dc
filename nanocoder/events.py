"""What an agent reports while it works: small dataclasses passed to one callable, on_event(event), which the
view, the JSON output and the saver consume. depth: 1 for a sub-agent; turn_id: its own chat's turn;
parent_call_id: the agent tool call whose sub-agent this is (None at the top): parallel ones told apart."""
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from dataclasses import dataclass, field


@dataclass
class Event:
    depth: int = field(default=0, kw_only=True)
    turn_id: str = field(default="", kw_only=True)
    parent_call_id: str | None = field(default=None, kw_only=True)


@dataclass
class TurnStarted(Event):
    prompt: str


@dataclass
class Text(Event):
    text: str  # a streamed piece of the answer


@dataclass
class Reasoning(Event):
    text: str  # a streamed piece of a thinking model's reasoning


@dataclass
class ToolStarted(Event):
    call_id: str
    name: str
    args: dict


@dataclass
class ToolFinished(Event):
    call_id: str
    name: str
    args: dict
    result: str  # what the model reads
    is_error: bool = False
    duration: float = 0.0  # seconds
    diff: str = ""  # what an edit changed, as a unified diff, for a view to show
    ran: bool = True  # False for a call refused, declined, blocked or malformed
    exit_code: int | None = None  # a command's (its line ends the result); negative: ended by `signal`
    signal: str = ""


@dataclass(frozen=True)
class Decision:
    """An answer to an ApprovalRequested: allow once, allow always within scope (the permission key the
    request states), or deny, with a reason the model reads."""
    allowed: bool
    scope: str = ""  # not empty: allowed from now on, for the rest of the session, for calls of this scope
    reason: str = ""

    @classmethod
    def once(cls) -> "Decision":
        return cls(True)

    @classmethod
    def always(cls, scope: str) -> "Decision":
        return cls(True, scope)

    @classmethod
    def deny(cls, reason: str = "") -> "Decision":
        return cls(False, reason=reason)


@dataclass
class ApprovalRequested(Event):
    """A call waits for the user's yes: whoever answers (the REPL, -p, a parent, a test) calls
    answer(Decision); the first answer counts. cancel() denies every pending request."""
    request_id: str
    call_id: str
    name: str
    args: dict
    why: str = ""  # why it needs asking (a protected file, a write outside the workspace)
    preview: str = ""  # what the call would change (an edit's diff)
    scope: str = ""  # what an "always" answer covers
    decision: Future = field(default_factory=Future, repr=False, compare=False)

    def answer(self, decision: Decision) -> None:
        with suppress(InvalidStateError):  # answered already (cancelled)
            self.decision.set_result(decision)


@dataclass
class Todos(Event):
    todos: list  # the whole list after a todo_write: [{"content", "status", "activeForm"}]


@dataclass
class Notice(Event):
    message: str  # e.g. "context: snipped 3 old tool outputs"


@dataclass
class Retry(Event):
    message: str  # e.g. "the provider answered 503; retrying in 2.0 s (retry 1 of 3)"
    discarded: bool = False  # a broken stream's text already streamed does not count


@dataclass
class Usage(Event):
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass
class RoundEnded(Event):
    messages: list  # the history, valid at this point: what a saver saves


@dataclass
class TurnEnded(Event):
    answer: str
    reason: str  # "success", "max_turns", "loop", "interrupted", "error"
    messages: list


def fan_out(*consumers):
    """One on_event that hands each event to every consumer in turn."""
    def each(event):
        for consume in consumers:
            consume(event)
    return each
