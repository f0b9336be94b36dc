"""The rules providers enforce on a chat history, which repair() restores (tests/history_rules.py checks every
request of the suite): a system prompt comes first or not at all; every tool call has an id unique in the
request, JSON-object arguments and one tool message answering it, right after its assistant message; no tool
message answers anything else; content is null only beside tool calls."""
import itertools
import json
import re

from . import messages as msg

INTERRUPTED = "Error: interrupted by the user before this tool finished."
ROLES = ("system", "user", "assistant", "tool")
STOPPED = ("Error: nanocoder was stopped before this call finished; it may have run in part. "
           "Check its effects before running it again.")


def repair(messages: list[dict]) -> list[dict]:
    """A valid history keeping all it can of this one (saved mid-turn, an old file, ids a provider reuses)."""
    out, used, i = [], set(), 0
    if not messages or messages[0].get("role") != "system":
        out.append(msg.system(""))  # the agent rewrites it every turn
    while i < len(messages):
        m, i = dict(messages[i]), i + 1
        role = m.get("role")
        if role not in ROLES or role == "tool" or (role == "system" and out):
            continue  # a tool message is taken below, right after the call it answers
        if m.get("content") is None and not m.get("tool_calls"):
            m["content"] = ""
        out.append(m)
        if role != "assistant" or not m.get("tool_calls"):
            continue
        answers = {}
        while i < len(messages) and messages[i].get("role") == "tool":
            answers.setdefault(str(messages[i].get("tool_call_id")), messages[i])
            i += 1
        m["tool_calls"] = [dict(c, function=dict(c.get("function") or {})) for c in m["tool_calls"]]
        for call in m["tool_calls"]:
            given = call.get("id")
            answer = answers.pop(str(given), {"content": INTERRUPTED, "is_error": True})
            call["id"] = fresh_id(given if isinstance(given, str) and given else "call", used)
            if not isinstance(call["function"].get("name"), str):
                call["function"]["name"] = "unknown"
            if not is_json_object(call["function"].get("arguments")):
                call["function"]["arguments"] = "{}"
            text = answer.get("content")
            out.append(msg.tool_result(call["id"], text if isinstance(text, str) else json.dumps(text),
                                       answer.get("is_error") is True))
    return out


def round_so_far(messages: list[dict], done: dict) -> list[dict]:
    """messages up to the last round's calls, each answered by its result in done (a call id -> its tool
    message) or, not finished yet, by STOPPED: what a saver writes mid-round, valid as it stands."""
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "assistant"), None)
    if last is None or not messages[last].get("tool_calls"):
        return messages
    answers = [done.get(c["id"]) or msg.tool_result(c["id"], STOPPED, is_error=True)
               for c in messages[last]["tool_calls"]]
    return messages[:last + 1] + answers


def fresh_id(call_id: str, used: set) -> str:
    """call_id, now used; if taken, its stem's next free number (Kimi repeats `functions.read_file:0`)."""
    if call_id in used:
        stem, number = re.match(r"(.*?)(\d*)$", call_id).groups()
        call_id = next(f"{stem}{n}" for n in itertools.count(int(number or 0) + 1)
                       if f"{stem}{n}" not in used)
    used.add(call_id)
    return call_id


def is_json_object(text) -> bool:
    try:
        return isinstance(text, str) and isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return False
