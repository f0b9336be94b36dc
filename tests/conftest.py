"""Shared fixtures: the project's scripted OpenAI-compatible server and an LLM pointed at it."""
import pytest

from history_rules import problems
from nanocoder.llm import LLM
from scripted import ScriptedServer


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv
    for n, request in enumerate(srv.requests):  # whatever a test did, no request broke the rules
        assert problems(request.get("messages") or []) == [], f"request {n}"


@pytest.fixture
def llm(server):
    # No retries: a scripted error must surface at once, not after backoff.
    return LLM("scripted", api_key="test", base_url=server.url, max_retries=0)


def assert_valid_history(messages):
    """The rules providers enforce on a chat history (nanocoder.history), and the system prompt first."""
    assert messages and messages[0]["role"] == "system"
    assert problems(messages) == []
