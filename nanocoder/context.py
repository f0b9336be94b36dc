"""Keep the conversation inside the model's window: snip old tool outputs to head and tail, summarise older
messages, at worst keep the newest that fit (calls with their results). Past a high-water mark the history
drops to a low-water mark at once: the requests in between share a prefix a prompt cache bills cheaply."""
import json
from collections import Counter
from dataclasses import dataclass

from . import messages as msg

DEFAULT_WINDOW = 128_000
SNIP_OVER, SNIP_TO = 2_000, 1_000  # characters of one old tool output
STUB = 100  # characters: a text no longer than this is never cut, one cut to less is a one-line stub
HIGH, LOW = 0.85, 0.5  # of the budget: when to compress, and down to where
SUMMARY_TAG = "[Summary of the conversation so far]"
ACK = "Understood. I will continue from this summary."
SUMMARY_PROMPT = """You compress a coding session so that work can go on without it.
Write a concise summary that keeps: the user's requests (the latest one in full), decisions
made, files read or changed and what changed in them, commands run and their important
results, errors still open, and what was about to happen next. Plain text, no preamble."""


def estimate(messages) -> int:
    """Tokens, roughly: ~4 characters a token for code and English, plus per-message overhead."""
    return _chars(messages) // 4


def _chars(messages) -> int:
    chars = 0
    for m in messages:
        chars += 16 + len(_text(m))
        for call in m.get("tool_calls") or ():
            chars += 16 + len(call["function"]["name"]) + len(call["function"]["arguments"])
    return chars


@dataclass(frozen=True)
class Counted:
    """What Context.tokens() counted: how many messages, the last of them, the characters of all but one."""
    messages: int = 0
    last: dict | None = None
    chars: int = 0


class Context:
    def __init__(self, window: int | None = None, usage=None):
        self.window, self.usage = window or DEFAULT_WINDOW, usage
        self.pinned = lambda: ""  # text that follows every summary (the agent's todo list)
        self._counted = Counted()  # replaced whole: the status line reads it from another thread

    def tokens(self, messages) -> int:
        """estimate(messages), paying only for messages added since the last call, and the system prompt; any
        other change (compression, /reset, a resume) leaves another last message: all are recounted."""
        n, chars = self._counted.messages, self._counted.chars
        if not (1 <= n <= len(messages) and messages[n - 1] is self._counted.last):
            n, chars = 1, 0
        chars += _chars(messages[n:])
        self._counted = Counted(len(messages), messages[-1] if messages else None, chars)
        return (_chars(messages[:1]) + chars) // 4

    def budget(self, llm, tools) -> int:
        """Tokens the messages may use: the window less the answer's room and the tool schemas."""
        answer = min(getattr(llm, "max_tokens", None) or 4096, self.window // 4)
        return self.window - answer - len(json.dumps(tools)) // 4

    def fit(self, messages: list, llm, tools=(), force=False) -> str | None:
        """Compress messages in place if needed; return a note of what was done, or None."""
        budget, before = self.budget(llm, tools), self.tokens(messages)
        if before <= budget * HIGH and not force:
            return None
        self._counted = Counted()  # compression changes messages in place: count afresh next time
        done = []
        if snipped := snip(messages):
            done.append(f"snipped {snipped} old tool outputs")
        if force or estimate(messages) > budget * LOW:
            done.append(self.summarise(messages, llm, keep=0 if force else budget // 4))
        if estimate(messages) > budget:
            done.append(collapse(messages, budget))
        # done is never empty: above the high-water mark, summarise runs
        return f"context: {'; '.join(done)} ({before:,} → {estimate(messages):,} tokens)"

    def summarise(self, messages, llm, keep: int) -> str:
        cuts = [i for i in range(2, len(messages)) if messages[i]["role"] != "tool"]
        if not cuts:
            return "nothing old enough to summarise"
        start = next((i for i in cuts if estimate(messages[i:]) <= keep), cuts[-1])
        old = messages[1:start]
        transcript = head_tail("\n\n".join(_render(m) for m in old), (self.window // 2) * 4)
        try:
            reply = llm.stream([msg.system(SUMMARY_PROMPT), msg.user(transcript)])
            summary = reply.content.strip()
            if self.usage:
                self.usage.add(reply)
        except Exception as e:  # the turn goes on without a summary rather than failing
            summary = f"(An earlier part of this conversation was dropped; it could not be summarised: {e})"
        text = f"{SUMMARY_TAG}\n{summary}{self.pinned()}"
        head = [{**msg.user(text), "summary": True}]  # marked: collapse keeps it
        if messages[start]["role"] == "user":  # keep roles alternating for strict providers
            head.append({**msg.assistant(ACK), "summary": True})
        messages[1:start] = head
        return f"summarised {len(old)} older messages"


def snip(messages) -> int:
    """Cut large tool outputs from before the latest round to head + tail."""
    last_round = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
    old = [m for m in messages[:last_round]
           if m["role"] == "tool" and len(m.get("content") or "") > SNIP_OVER]
    for m in old:
        m["content"] = (head_tail(m["content"], SNIP_TO)
                        + "\n[old output snipped; run the tool again if needed]")
    return len(old)


def collapse(messages, budget: int) -> str:
    """Drop the oldest message groups after the summary until the rest fits, then cut what is left."""
    first = 1  # system prompt, then the summary (and its acknowledgement) stay
    while len(messages) > first and messages[first].get("summary"):
        first += 1
    # where each group (a message and the results of its calls) begins; dropping up to `first` drops nothing
    cuts = [first] + [i for i in range(first + 1, len(messages)) if messages[i]["role"] != "tool"]
    start = next((i for i in cuts if estimate(messages[:first] + messages[i:]) <= budget), cuts[-1])
    del messages[first:start]
    if len(messages) > first and messages[first - 1]["role"] == messages[first]["role"] == "assistant":
        del messages[first - 1]  # the acknowledgement, now before an answer
    chars = _chars(messages)
    share = budget * 4 // len(messages) - 16  # what each message may keep when all are cut alike
    for m in messages[1:]:  # one huge turn: cut every message's text to its share of the budget
        if chars <= budget * 4:
            break
        chars -= _chars([m])
        if isinstance(m.get("content"), str) and len(m["content"]) > max(share, STUB):
            m["content"] = head_tail(m["content"], share) if share >= 200 else _stub(m["content"])
        for call in m.get("tool_calls") or ():  # a 10 MB write_file: its arguments, cut, stay a JSON object
            if len(call["function"]["arguments"]) > max(share, 200):
                args = json.loads(call["function"]["arguments"])
                call["function"]["arguments"] = json.dumps(
                    {k: head_tail(v, max(share, 200) // max(1, len(args))) if isinstance(v, str) else v
                     for k, v in args.items()})
        chars += _chars([m])
    if chars > budget * 4:
        _drop_calls(messages, chars - budget * 4 + 400)  # 400: room for the note that names them
    return f"dropped {start - first} older messages to fit the window"


def _drop_calls(messages, excess: int) -> None:
    """A batch of calls too large for the window even as one-line stubs: its oldest calls and their results
    go, named in a note on the message that made them, until `excess` characters are freed."""
    at = max((i for i, m in enumerate(messages) if m.get("tool_calls")), default=None)
    if at is None:
        return
    calls, answers = messages[at]["tool_calls"], {m.get("tool_call_id"): m for m in messages[at + 1:]}
    dropped = 0
    while dropped < len(calls) and excess > 0:
        call = calls[dropped]
        excess -= _chars([{"tool_calls": [call]}]) - 16 + _chars([answers.get(call["id"], {})])
        dropped += 1
    gone = {c["id"] for c in calls[:dropped]}
    names = Counter(call["function"]["name"] for call in calls[:dropped])
    note = (f"[{dropped} earlier calls of this batch and their results were dropped to fit the window: "
            + ", ".join(f"{n} {name}" for name, n in names.items()) + "; run them again if needed]")
    messages[at] = {**messages[at], "content": note, "tool_calls": calls[dropped:]}
    if not calls[dropped:]:
        del messages[at]["tool_calls"]
    messages[at + 1:] = [m for m in messages[at + 1:] if m.get("tool_call_id") not in gone]


def _stub(text: str) -> str:
    """A text cut to one line: its first words and how much was cut."""
    line = text.lstrip().split("\n", 1)[0][:40]
    return f"{line} [... {len(text) - len(line)} characters cut to fit the window]"


def head_tail(text: str, limit: int, what: str = "characters") -> str:
    """Cut text longer than limit to its head and tail: errors tend to sit at the end."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n\n[... {len(text) - 2 * half} {what} cut ...]\n\n{text[-half:]}"


def _text(m) -> str:
    content = m.get("content") or ""
    return content if isinstance(content, str) else json.dumps(content)


def _render(m) -> str:
    text = head_tail(_text(m), 600) if m["role"] == "tool" else _text(m)
    calls = "".join(f"\n-> {c['function']['name']}({head_tail(c['function']['arguments'], 300)})"
                    for c in m.get("tool_calls") or ())
    return f"{m['role'].upper()}: {text}{calls}"
