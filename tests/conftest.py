"""Shared fixtures: the project's scripted OpenAI-compatible server and an LLM pointed at it."""
import pytest

from nanocoder.llm import LLM
from nanocoder.scripted import ScriptedServer


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def llm(server):
    # No retries: a scripted error must surface at once, not after backoff.
    return LLM("scripted", api_key="test", base_url=server.url, max_retries=0)


def assert_valid_history(messages):
    """The rules providers enforce on a chat history: a tool message answers a call of the
    assistant message right before its run, each call is answered exactly once, arguments are
    JSON text, and the system prompt comes first."""
    assert messages and messages[0]["role"] == "system"
    pending = set()
    for i, m in enumerate(messages):
        role = m["role"]
        assert role in ("system", "user", "assistant", "tool"), f"message {i}: bad role {role}"
        if role == "tool":
            assert m["tool_call_id"] in pending, f"message {i}: tool result for no open call"
            pending.discard(m["tool_call_id"])
            assert isinstance(m["content"], str)
            continue
        assert not pending, f"message {i}: calls {pending} were never answered"
        if role == "assistant":
            calls = m.get("tool_calls") or []
            for c in calls:
                assert isinstance(c["function"]["arguments"], str)
            ids = [c["id"] for c in calls]
            assert len(ids) == len(set(ids)), f"message {i}: duplicate call ids"
            pending = set(ids)
            assert m.get("content") is not None or calls, f"message {i}: empty assistant message"
        elif role == "system":
            assert i == 0, f"message {i}: a second system message"
    assert not pending, f"calls {pending} were never answered"
