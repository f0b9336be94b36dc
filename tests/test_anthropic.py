"""The Anthropic Messages API adapter through the real anthropic SDK, against tests/scripted_anthropic.py:
every request it sends is checked against the API's history rules; the same scripted session through both
adapters gives the same events."""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from history_rules import problems
from nanocoder import Agent, events
from nanocoder.anthropic_api import AnthropicModel
from nanocoder.config import Config, ConfigError
from nanocoder.history import repair
from nanocoder.llm import ContextTooLong, LLMError
from nanocoder.session import Session
from scripted_anthropic import ScriptedAnthropic, rules, sign

NANOCODER = Path(sys.executable).parent / "nanocoder"


@pytest.fixture
def aserver():
    with ScriptedAnthropic() as srv:
        yield srv
    for n, request in enumerate(srv.requests):  # whatever a test did, no request broke the API's rules
        assert rules(request) == [], f"request {n}: {json.dumps(request)[:2000]}"


@pytest.fixture
def claude(aserver):
    return AnthropicModel("claude-scripted", api_key="test", base_url=aserver.url, max_retries=0)


def key_sent(headers) -> str:
    """The API key as the SDK sent it (versions differ: x-api-key, or a bearer token)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def agent_on(model, folder, seen=None):
    agent = Agent(model, cwd=folder, on_event=seen.append if seen is not None else None)
    agent.workspace.sandbox_policy = "read-only"
    return agent


def test_text_streams_and_cached_usage_is_counted_as_on_the_openai_path(aserver, claude):
    aserver.add({"content": "Hello world, streamed.", "usage": {"input_tokens": 12, "output_tokens": 9,
                 "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 50}})
    seen = []
    reply = claude.stream([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                          [{"type": "function",
                            "function": {"name": "glob", "parameters": {"type": "object"}}}],
                          seen.append)
    assert reply.content == "Hello world, streamed." == "".join(e.text for e in seen)
    assert len(seen) > 1 and all(type(e) is events.Text for e in seen)
    assert reply.finish_reason == "stop"
    # prompt_tokens counts every input token, cached ones included, as OpenAI's does
    assert (reply.prompt_tokens, reply.cached_tokens, reply.completion_tokens) == (1062, 1000, 9)
    body = aserver.requests[0]
    assert body["system"] == [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert key_sent(aserver.headers[0]) == "test"


def test_parallel_tool_calls_run_and_their_results_go_back_as_tool_result_blocks(aserver, claude, tmp_path):
    (tmp_path / "a.py").write_text("print('a')\n")
    aserver.add({"content": "Looking.", "tool_calls": [
        {"name": "read_file", "arguments": {"file_path": "a.py"}},
        {"name": "glob", "arguments": {"pattern": "*.py"}},
        {"name": "no_such_tool", "arguments": {}}]}, "It prints a.")
    seen = []
    agent = agent_on(claude, tmp_path, seen)
    assert agent.chat("what does a.py do?") == "It prints a."
    turns = aserver.requests[1]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["text", "tool_use", "tool_use", "tool_use"]
    results = turns[2]["content"]
    assert [b["tool_use_id"] for b in results] == [b["id"] for b in turns[1]["content"][1:]]
    assert "print('a')" in results[0]["content"] and "a.py" in results[1]["content"]
    assert [b.get("is_error", False) for b in results] == [False, False, True]  # the unknown tool's
    assert problems(agent.messages) == []
    finished = [e for e in seen if type(e) is events.ToolFinished]
    assert sorted((e.name, e.is_error) for e in finished) == [("glob", False), ("no_such_tool", True),
                                                             ("read_file", False)]


def test_thinking_blocks_are_kept_with_their_signatures_and_sent_back_first(aserver, tmp_path):
    model = AnthropicModel("claude-scripted", api_key="test", base_url=aserver.url, max_retries=0,
                           thinking=2048, temperature=0.5)
    aserver.add({"thinking": "The user wants the files listed; glob does that.",
                 "tool_calls": [{"name": "glob", "arguments": {"pattern": "*"}}]},
                {"thinking": "Nothing there.", "content": "The folder is empty."})
    seen = []
    assert agent_on(model, tmp_path, seen).chat("list the files") == "The folder is empty."
    assert "".join(e.text for e in seen if type(e) is events.Reasoning) == (
        "The user wants the files listed; glob does that.Nothing there.")
    first, second = aserver.requests
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048} and "temperature" not in first
    sent = second["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["thinking", "tool_use"]
    assert sent[0]["signature"] == sign("The user wants the files listed; glob does that.")


def test_max_tokens_is_a_cut_answer_and_a_cut_call_is_not_run(aserver, claude, tmp_path):
    aserver.add({"tool_calls": [{"name": "write_file", "arguments": '{"file_path": "x.py", "content": "pri'}],
                 "stop_reason": "max_tokens"},
                {"content": "A long answer that was cut", "stop_reason": "max_tokens"})
    seen = []
    agent = agent_on(claude, tmp_path, seen)
    assert agent.chat("write x.py") == "A long answer that was cut"
    assert not (tmp_path / "x.py").exists()
    result = aserver.requests[1]["messages"][2]["content"][0]
    assert result["is_error"] and "cut off by the token limit" in result["content"]
    assert [e.reason for e in seen if type(e) is events.TurnEnded] == ["length"]
    assert any(type(e) is events.Notice and "cut off" in e.message for e in seen)


def test_a_refusal_is_not_shown_as_success(aserver, claude, tmp_path):
    aserver.add({"content": "I can't help with that.", "stop_reason": "refusal"})
    seen = []
    agent_on(claude, tmp_path, seen).chat("do something bad")
    assert [e.reason for e in seen if type(e) is events.TurnEnded] == ["refusal"]
    assert any(type(e) is events.Notice and "refused" in e.message for e in seen)


@pytest.mark.parametrize("status", [429, 529, 500])
def test_rate_limits_and_overload_are_retried(aserver, status):
    model = AnthropicModel("claude-scripted", api_key="test", base_url=aserver.url, max_retries=2)
    model.backoff = 0.01
    aserver.add({"status": status, "error": "slow down", "headers": {"retry-after": "0"}}, "Fine now.")
    seen = []
    assert model.stream([{"role": "user", "content": "hi"}], on_event=seen.append).content == "Fine now."
    retries = [e for e in seen if type(e) is events.Retry]
    assert len(retries) == 1 and f"{status}" in retries[0].message and len(aserver.requests) == 2


def test_a_stream_dropped_before_its_first_event_is_retried(aserver):
    model = AnthropicModel("claude-scripted", api_key="test", base_url=aserver.url, max_retries=2)
    model.backoff = 0.01
    aserver.add({"drop": True}, {"error_event": "overloaded_error"}, "Here.")
    seen = []
    assert model.stream([{"role": "user", "content": "hi"}], on_event=seen.append).content == "Here."
    said = [e.message for e in seen if type(e) is events.Retry]
    assert len(said) == 2 and "broke off" in said[0] and "529" in said[1], said


def test_context_too_long_and_other_refusals_are_one_line(aserver, claude):
    aserver.add({"status": 400, "error": "prompt is too long: 250000 tokens > 200000 maximum"},
                {"status": 401, "error": "invalid x-api-key"})
    with pytest.raises(ContextTooLong):
        claude.stream([{"role": "user", "content": "hi"}])
    with pytest.raises(LLMError, match="ANTHROPIC_API_KEY"):
        claude.stream([{"role": "user", "content": "hi"}])


def test_without_the_sdk_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "anthropic", None)  # `import anthropic` now raises ImportError
    with pytest.raises(LLMError, match=r"pip install 'nanocoderagent\[anthropic\]'"):
        AnthropicModel("claude-x", api_key="k").stream([{"role": "user", "content": "hi"}])


def test_histories_of_any_shape_become_valid_turns(aserver, claude, tmp_path, monkeypatch):
    """Consecutive same-role messages merge; empty texts vanish; another provider's ids are made valid;
    a session saved before this format (no is_error, Kimi-style ids, an interrupted turn) still loads."""
    saved = [{"role": "system", "content": "s"}, {"role": "user", "content": "one"},
             {"role": "assistant", "content": "", "reasoning_content": "hm",
              "tool_calls": [{"id": "functions.read_file:0", "type": "function",
                              "function": {"name": "read_file", "arguments": '{"file_path": "a"}'}}]},
             {"role": "tool", "tool_call_id": "functions.read_file:0", "content": ""},
             {"role": "user", "content": "[The user interrupted this turn.]"},
             {"role": "user", "content": "two"},
             {"role": "assistant", "content": ""}, {"role": "user", "content": "three"}]
    monkeypatch.setenv("HOME", str(tmp_path))
    session = Session(model="claude-x", cwd="/", messages=saved)
    session.save()
    loaded = repair(Session.load(session.id).messages)
    assert loaded == saved  # valid as saved: nothing to repair
    aserver.add("ok")
    claude.stream(loaded)
    turns = aserver.requests[0]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0]["id"] == turns[2]["content"][0]["tool_use_id"] == "functions_read_file_0"
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "text", "text", "text"]


def test_the_openai_adapter_never_sends_the_neutral_only_keys(server, llm, aserver, claude, tmp_path):
    for srv in (server, aserver):
        srv.add({"tool_calls": [{"name": "nope", "arguments": {}}]}, "done")
    agent = agent_on(llm, tmp_path)
    agent.chat("go")
    assert agent.messages[3]["is_error"] is True  # kept in the history and the session
    sent = server.requests[1]["messages"]
    assert sent[3] == {"role": "tool", "tool_call_id": agent.messages[3]["tool_call_id"],
                       "content": agent.messages[3]["content"]}


def script(tmp_path):
    (tmp_path / "notes.txt").write_text("remember the milk\n")
    return [{"content": "Let me look around.", "tool_calls": [
                {"name": "glob", "arguments": {"pattern": "*.txt"}},
                {"name": "read_file", "arguments": {"file_path": "notes.txt"}}]},
            {"tool_calls": [{"name": "read_file", "arguments": {"file_path": "missing.txt"}}]},
            "The note says: remember the milk."]


def shape(seen):
    """The events as a comparable list: types (consecutive Text merged), tool calls and results, the end."""
    out = []
    for e in seen:
        if type(e) is events.Text and out and out[-1][0] == "Text":
            out[-1] = ("Text", out[-1][1] + e.text)
        elif type(e) is events.Text:
            out.append(("Text", e.text))
        elif type(e) in (events.ToolStarted, events.ToolFinished):
            out.append((type(e).__name__, e.call_id, e.name, e.args, getattr(e, "result", None),
                        getattr(e, "is_error", None)))
        elif type(e) is events.TurnEnded:
            out.append(("TurnEnded", e.answer, e.reason))
        else:
            out.append((type(e).__name__,))
    # parallel calls finish in any order: each run of results is compared in the calls' order
    runs = itertools.groupby(out, key=lambda entry: entry[0])
    return [entry for kind, run in runs for entry in (sorted(run) if kind == "ToolFinished" else run)]


def test_the_same_session_through_both_adapters_gives_the_same_events(server, llm, aserver, claude, tmp_path):
    runs = []
    for model, srv, name in ((llm, server, "openai"), (claude, aserver, "anthropic")):
        folder = tmp_path / name
        folder.mkdir()
        srv.add(*script(folder))
        seen = []
        answer = agent_on(model, folder, seen).chat("what do my notes say?")
        runs.append(shape(seen))
    assert answer == "The note says: remember the milk."
    assert runs[0] == runs[1]
    kinds = [e[0] for e in runs[0]]
    assert kinds.count("ToolFinished") == 3 and kinds.count("Usage") == 3 and kinds[-1] == "TurnEnded"


def test_provider_is_chosen_by_flag_variable_or_model_name():
    assert Config.load(env={}).provider == "openai"
    assert Config.load(env={"NANOCODER_MODEL": "claude-opus-4-1"}).provider == "anthropic"
    assert Config.load("claude-x", env={"NANOCODER_PROVIDER": "openai"}).provider == "openai"
    c = Config.load(env={"ANTHROPIC_API_KEY": "ak", "OPENAI_API_KEY": "ok",
                         "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}, provider="anthropic")
    assert (c.api_key, c.base_url, c.model) == ("ak", "http://127.0.0.1:1", "claude-sonnet-4-5")
    with pytest.raises(ConfigError, match="'gemini' is not one of: openai, anthropic"):
        Config.load(env={"NANOCODER_PROVIDER": "gemini"})


def test_end_to_end_with_provider_anthropic(aserver, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "hello.txt").write_text("hi from the file\n")
    aserver.add({"tool_calls": [{"name": "read_file", "arguments": {"file_path": "hello.txt"}}]},
                "The file says hi.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_", "ANTHROPIC_"))}
    env.update(HOME=str(home), NO_COLOR="1", ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=aserver.url)
    result = subprocess.run([str(NANOCODER), "-p", "what does hello.txt say?", "--provider", "anthropic",
                             "-m", "claude-scripted"], env=env, cwd=work, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "The file says hi."
    assert key_sent(aserver.headers[0]) == "sk-ant-test" and len(aserver.requests) == 2
    assert "hi from the file" in aserver.requests[1]["messages"][2]["content"][0]["content"]


def test_end_to_end_with_only_an_auth_token(aserver, tmp_path):
    """ANTHROPIC_AUTH_TOKEN alone is enough (no "no API key"), goes as a bearer token, and stays out of the
    environment of the commands the model runs."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    aserver.add({"tool_calls": [{"name": "bash", "arguments": {"command": "env > seen.txt"}}]}, "Done.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_", "ANTHROPIC_"))}
    env.update(HOME=str(home), NO_COLOR="1", ANTHROPIC_AUTH_TOKEN="tok-e2e-secret",
               ANTHROPIC_BASE_URL=aserver.url)
    result = subprocess.run([str(NANOCODER), "-p", "look", "-y", "-m", "claude-scripted"], env=env, cwd=work,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and result.stdout.strip() == "Done.", result.stderr
    assert aserver.headers[0].get("authorization") == "Bearer tok-e2e-secret"
    assert "x-api-key" not in aserver.headers[0]
    seen = (work / "seen.txt").read_text()
    assert "PATH=" in seen and "tok-e2e-secret" not in seen
