"""The rules providers enforce on a chat history (nanocoder/history.py states them), as a validator that
every request in the test suite passes."""
from nanocoder.history import ROLES, is_json_object


def problems(messages: list[dict]) -> list[str]:
    """Every rule the history breaks, as sentences; [] when a provider would accept it."""
    found, seen, pending = [], set(), set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ROLES:
            found.append(f"message {i}: unknown role {role!r}")
            continue
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                found.append(f"message {i}: a tool result for no open call ({m.get('tool_call_id')!r})")
            pending.discard(m.get("tool_call_id"))
            if not isinstance(m.get("content"), str):
                found.append(f"message {i}: tool content must be text")
            continue
        if pending:
            found.append(f"message {i}: calls {sorted(pending)} were never answered")
            pending = set()
        if role == "system" and i:
            found.append(f"message {i}: a system message after the first")
        calls = (m.get("tool_calls") or []) if role == "assistant" else []
        for call in calls:
            if call.get("id") in seen:
                found.append(f"message {i}: tool call id {call.get('id')!r} used twice")
            seen.add(call.get("id"))
            pending.add(call.get("id"))
            arguments = (call.get("function") or {}).get("arguments")
            if not (isinstance(arguments, str) and is_json_object(arguments)):
                found.append(f"message {i}: arguments of {call.get('id')!r} are not a JSON object string")
        if m.get("content") is None and not calls:
            found.append(f"message {i}: null content without tool calls")
    if pending:
        found.append(f"calls {sorted(pending)} were never answered")
    return found
