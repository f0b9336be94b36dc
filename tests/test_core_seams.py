"""The core's seams (issue 19): what compression wrote and what the model was told of its environment are
marked in the neutral message format and never sent; both adapters behave alike through one shared loop
(retries, cut answers, events); the checks that guard the history rules, the event comparison and the
import graph can each fail; Anthropic's bearer token is read as the anthropic SDK reads it."""
from history_rules import problems
from nanocoder import Agent, events
from nanocoder.anthropic_api import AnthropicModel
from nanocoder.context import ACK, collapse, estimate
from nanocoder.messages import NEUTRAL_ONLY
from nanocoder.prompt import environment
from nanocoder.tools.base import Workspace
from scripted_anthropic import rules
from test_anthropic import aserver, shape  # noqa: F401 (a fixture)
from test_wiring import cycles

NOT_SENT = ("summary", "environment")


# --- marks, not text ----------------------------------------------------------------------------------------

def test_compression_marks_its_summary_and_the_mark_is_never_sent(server, llm, tmp_path):
    server.add("one", "two", "SUMMARY-TEXT", "three")
    agent = Agent(llm=llm, cwd=tmp_path)
    agent.chat("a")
    agent.chat("b")
    agent.compact()
    assert agent.messages[1]["summary"] is True and agent.messages[1]["role"] == "user"
    assert agent.messages[0]["environment"] == environment(agent.workspace)
    agent.chat("c")
    assert set(NOT_SENT) <= set(NEUTRAL_ONLY)
    sent = server.requests[-1]["messages"]
    assert sent[1]["content"].endswith("SUMMARY-TEXT")
    assert not [k for m in sent for k in m if k in NOT_SENT]


def test_collapse_keeps_a_marked_summary_whatever_its_text_says():
    """The summary is found by its mark: an old summary's wording, or a model's reply, decides nothing."""
    summary = {"role": "user", "content": "what happened so far", "summary": True}
    ack = {"role": "assistant", "content": "Fine.", "summary": True}
    messages = [{"role": "system", "content": "s"}, summary, ack]
    for n in range(20):
        messages += [{"role": "user", "content": f"q{n} " + "z" * 2000},
                     {"role": "assistant", "content": ACK if n == 0 else "a" * 2000}]
    collapse(messages, budget=3000)
    assert messages[1] is summary  # kept in front; its acknowledgement goes only before an answer
    roles = [m["role"] for m in messages[1:]]
    assert roles == ["user", "assistant"] * (len(roles) // 2)  # the acknowledgement, or an answer after it
    assert estimate(messages) <= 3000 and problems(messages) == []


def test_a_resumed_session_is_told_its_environment_only_if_it_moved_on(server, llm, tmp_path):
    server.add("same place", "older session")
    told = environment(Workspace(tmp_path))
    agent = Agent(llm=llm, cwd=tmp_path)
    agent.messages = [{"role": "system", "content": "a prompt of an earlier version", "environment": told}]
    agent.chat("hello")
    assert server.requests[-1]["messages"][-1]["content"] == "hello"  # the same environment: no note
    agent.messages = [{"role": "system", "content": "a prompt saved before the mark"}]
    agent.chat("hello again")  # nothing says what it was told: told again
    assert server.requests[-1]["messages"][-1]["content"].startswith("<environment>")


def test_a_tool_call_tag_inside_a_native_call_reply_is_left_as_text(server, llm, tmp_path):
    """The `<tool_call>` dialect is read only from text the model wrote while making no native call."""
    server.add({"content": 'I could write <tool_call>{"name": "glob", "arguments": {}}</tool_call>',
                "tool_calls": [{"name": "glob", "arguments": {"pattern": "*.md"}}]}, "done")
    seen = []
    Agent(llm=llm, cwd=tmp_path, on_event=seen.append).chat("go")
    started = [e.args for e in seen if isinstance(e, events.ToolStarted)]
    assert started == [{"pattern": "*.md"}]


# --- both adapters, one loop --------------------------------------------------------------------------------

def faulty_script(provider):
    """A rate limit, a round of calls, then an answer cut by the token limit, in each server's words."""
    cut = {"finish_reason": "length"} if provider == "openai" else {"stop_reason": "max_tokens"}
    return [{"status": 429, "error": "slow down", "headers": {"retry-after": "0"}},
            {"content": "Looking.", "tool_calls": [{"name": "glob", "arguments": {"pattern": "*.txt"}}]},
            {"content": "The answer is cut", **cut}]


def test_a_retry_and_a_cut_answer_give_the_same_events_through_both_adapters(server, aserver, tmp_path):
    from nanocoder.llm import LLM
    runs = []
    for name, srv, Model in (("openai", server, LLM), ("anthropic", aserver, AnthropicModel)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a.txt").write_text("a\n")
        srv.add(*faulty_script(name))
        model = Model("scripted", api_key="k", base_url=srv.url, max_retries=1)
        model.backoff = 0
        seen = []
        agent = Agent(model, cwd=folder, on_event=seen.append)
        assert agent.chat("go") == "The answer is cut"
        retry = next(e for e in seen if isinstance(e, events.Retry))
        assert retry.message.startswith("rate limited by the provider (429)")
        runs.append(shape(seen))
    assert runs[0] == runs[1]
    assert runs[0][-1] == ("TurnEnded", "The answer is cut", "length")
    assert ("Notice",) in runs[0] and ("Retry",) in runs[0]


def test_the_event_comparison_tells_different_sessions_apart():
    same = [events.Text("a"), events.Text("b"), events.TurnEnded("ab", "success", [])]
    assert shape(same) == shape([events.Text("ab"), events.TurnEnded("ab", "success", [])])
    assert shape(same) != shape([events.Text("ab"), events.TurnEnded("ab", "length", [])])
    assert shape(same) != shape([events.Text("ab"), events.Notice("x"), events.TurnEnded("ab", "success", [])])


# --- the checks themselves can fail -------------------------------------------------------------------------

def test_the_history_checks_find_what_they_look_for():
    call = {"id": "c1", "type": "function", "function": {"name": "glob", "arguments": "{}"}}
    unanswered = [{"role": "system", "content": "s"}, {"role": "user", "content": "go"},
                  {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "user", "content": "?"}]
    assert problems(unanswered)
    assert rules({"max_tokens": 10, "messages": [{"role": "assistant", "content": "hi"}]})
    assert rules({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_result",
                                                                                "tool_use_id": "x"}]}]})
    assert rules({"max_tokens": 10, "messages": [{"role": "user", "content": "a"},
                                                  {"role": "user", "content": "b"}]})


def test_the_property_tests_cover_both_providers():
    import test_agent_properties
    import test_history_properties
    for test in (test_agent_properties.test_nothing_escapes_chat_and_the_history_stays_sendable,
                 test_history_properties.test_every_request_is_valid_and_fits_the_window):
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        assert any(m.args[0] == "provider" and set(m.args[1]) == {"openai", "anthropic"} for m in marks)


def test_the_cycle_finder_finds_a_circle_through_any_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


# --- credentials --------------------------------------------------------------------------------------------

def test_an_anthropic_bearer_token_is_sent_as_one(aserver, monkeypatch):
    aserver.add("by token", "by the variable")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    model = AnthropicModel("scripted", auth_token="tok-1", base_url=aserver.url, max_retries=0)
    assert model.stream([{"role": "user", "content": "hi"}]).content == "by token"
    assert aserver.headers[0].get("authorization") == "Bearer tok-1" and "x-api-key" not in aserver.headers[0]
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "tok-2")  # as the SDK reads it when nothing is given
    model = AnthropicModel("scripted", base_url=aserver.url, max_retries=0)
    assert model.stream([{"role": "user", "content": "hi"}]).content == "by the variable"
    assert aserver.headers[1].get("authorization") == "Bearer tok-2"
