"""Configuration: settings.json's provider keys, a project's .env left unread, and every input checked with
one line (issue 19's configuration, issue 21 items 14 and 15)."""
import json
import socket
from pathlib import Path

import pexpect
import pytest

from nanocoder import events
from nanocoder.context import ACK, SUMMARY_TAG
from nanocoder.llm import LLM, LLMError
from nanocoder.session import Session, list_sessions
from scripted import Handler, ScriptedServer
from test_cli import KEY, env, one_line_error, run, workspace  # noqa: F401 (fixtures)
from test_repl import PROMPT, repl, turn  # noqa: F401 (fixture)


class KeyedHandler(Handler):
    def do_POST(self):
        self.server.scripted.keys.append(self.headers.get("Authorization"))
        super().do_POST()


class KeyedServer(ScriptedServer):
    """The scripted server, which also records the key each request carried."""
    handler = KeyedHandler

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = []


def settings(env, content):
    folder = Path(env["HOME"]) / ".nanocoder"
    folder.mkdir(exist_ok=True)
    (folder / "settings.json").write_text(content if isinstance(content, str) else json.dumps(content))


# --- issue 21, item 14: inputs taken without a check ------------------------------------------------------

@pytest.mark.parametrize("turns", ["-5", "0"])
def test_max_turns_below_one_is_an_error(env, workspace, turns):
    with ScriptedServer(["never sent"]) as server:
        result = run(["-p", "hi", "--max-turns", turns, "--base-url", server.url, "--api-key", KEY],
                     env, workspace)
    one_line_error(result, f"--max-turns {turns}", "at least 1")
    assert server.requests == []


def test_an_empty_model_name_is_an_error(env, workspace):
    with ScriptedServer(["never sent"]) as server:
        result = run(["-p", "hi", "-m", "", "--base-url", server.url, "--api-key", KEY], env, workspace)
    one_line_error(result, "-m ''", "model name")
    assert server.requests == []


def test_a_prompt_next_to_p_is_an_error_not_dropped(env, workspace):
    with ScriptedServer(["never sent"]) as server:
        result = run(["-p", "hi", "there", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 2
    one_line_error(result, "PROMPT", "-p")
    assert server.requests == []


def test_output_format_without_p_is_an_error(env, workspace):
    result = run(["--output-format", "json", "--api-key", KEY], env, workspace)
    assert result.returncode == 2
    one_line_error(result, "--output-format json", "-p")


def test_a_base_url_that_is_no_url_fails_at_once(env, workspace):
    result = run(["-p", "hi", "--api-key", KEY], {**env, "OPENAI_BASE_URL": "notaurl"}, workspace)
    one_line_error(result, "OPENAI_BASE_URL", "'notaurl'", "http(s)")


def test_a_host_no_resolver_knows_is_not_retried(monkeypatch):
    # `OPENAI_BASE_URL=http://notaurl`: a typo, which asking three more times will not fix. The real SDK and
    # transport; only the resolver answers as it does for a name that does not exist (no network here).
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    llm, seen = LLM("m", api_key="k", base_url="http://notaurl/v1", max_retries=3), []
    llm.backoff = 0
    with pytest.raises(LLMError, match="no such host"):
        llm.stream([{"role": "user", "content": "hi"}], on_event=seen.append)
    assert [e for e in seen if isinstance(e, events.Retry)] == []


def test_model_command_checks_the_name(repl, server):  # noqa: F811
    server.models.append("other-model")  # one the provider lists
    turn(repl, "/model two words", "not a model name", r"model\s+stays\s+scripted")
    turn(repl, "/model other-model", "model: other-model")
    server.add("reply")
    turn(repl, "hi", "reply")
    assert server.requests[-1]["model"] == "other-model"


# --- issue 21, item 15: wording ---------------------------------------------------------------------------

def test_one_round_is_singular(env, workspace):
    glob = {"name": "glob", "arguments": {"pattern": "*"}}
    with ScriptedServer([{"tool_calls": [glob]}, "never sent"]) as server:
        result = run(["-p", "go", "--max-turns", "1", "--base-url", server.url, "--api-key", KEY],
                     env, workspace)
    assert result.returncode == 1
    assert "stopped after 1 round (--max-turns)" in result.stderr, result.stderr


def test_p_with_yes_does_not_say_re_run_with_yes(env, workspace):
    write = {"name": "write_file", "arguments": {"file_path": ".git/hooks/pre-commit", "content": "x"}}
    with ScriptedServer([{"tool_calls": [write]}, "not written"]) as server:
        result = run(["-p", "go", "-y", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0, result.stderr
    assert not (workspace / ".git").exists()
    said = " ".join(result.stderr.split())  # rich wraps it at 80 columns
    assert "not run: write_file needs approval" in said
    assert "re-run with --yes" not in said and "--yes does not cover it" in said


def test_sessions_show_the_first_prompt_after_compact(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    session = Session(model="m", cwd=str(tmp_path), messages=[
        {"role": "system", "content": "s"}, {"role": "user", "content": "fix  the\nparser"},
        {"role": "assistant", "content": "done"}])
    session.save()
    # what /compact leaves: the summary in place of the first messages
    session.messages[1:3] = [{"role": "user", "content": f"{SUMMARY_TAG}\nThe parser was fixed."},
                             {"role": "assistant", "content": ACK}]
    session.save()
    assert [row["prompt"] for row in list_sessions()] == ["fix the parser"]
    assert Session.load(session.id).title == "fix the parser"


# --- settings.json: model, provider, base URL -----------------------------------------------------------

def test_settings_give_the_model_and_base_url(env, workspace):
    with ScriptedServer(["from settings"]) as server:
        settings(env, {"model": "settings-model", "base_url": server.url})
        result = run(["-p", "hi", "--api-key", KEY], env, workspace)
    assert result.returncode == 0 and result.stdout == "from settings\n", result.stderr
    assert server.requests[0]["model"] == "settings-model"


@pytest.mark.parametrize("content, words", [
    ({"model": 4}, ['"model"', "4", "not a model name"]),
    ({"model": "gpt 4o"}, ['"model"', "'gpt 4o'"]),
    ({"base_url": "localhost:11434"}, ['"base_url"', "http(s)"]),
    ({"provider": "openia"}, ['"provider"', "'openia'", "openai, anthropic"]),
    ({"api_key_env": "sk-abc123"}, ['"api_key_env"', "never stored"]),
    ([1, 2], ["JSON object"]),
    ("{not json", ["unreadable"]),
])
def test_a_wrong_setting_is_one_line(env, workspace, content, words):
    settings(env, content)
    one_line_error(run(["-p", "hi", "--api-key", KEY], env, workspace), *words)


def test_an_unknown_key_is_a_warning_naming_it(env, workspace):
    with ScriptedServer(["still works"]) as server:
        settings(env, {"modle": "x", "base_url": server.url})
        result = run(["-p", "hi", "--api-key", KEY], env, workspace)
    assert result.returncode == 0 and result.stdout == "still works\n", result.stderr
    warnings = [line for line in result.stderr.splitlines() if "unknown key" in line]
    assert len(warnings) == 1 and "'modle'" in warnings[0], result.stderr


# --- a project's .env ---------------------------------------------------------------------------------------

def test_a_projects_dotenv_is_not_read(env, workspace):
    """A .env is a file that commands can write and the model can read: nothing in it steers nanocoder."""
    with ScriptedServer(["never sent"]) as hostile, ScriptedServer(["safe"]) as server:
        (workspace / ".env").write_text(f"OPENAI_API_KEY=sk-from-dotenv\nOPENAI_BASE_URL={hostile.url}\n"
                                        "NANOCODER_MODEL=dotenv-model\n")
        missing = run(["-p", "hi"], env, workspace)
        result = run(["-p", "hi", "--base-url", server.url], {**env, "OPENAI_API_KEY": KEY}, workspace)
    one_line_error(missing, "no API key", "a .env is not read")
    assert result.returncode == 0 and result.stdout == "safe\n", result.stderr
    assert hostile.requests == [] and server.requests[0]["model"] != "dotenv-model"
