"""/model and the provider's model list (issue 21): GET /models through each adapter, asked once and only when
/model is used or completed, a name the provider does not list refused with the close ones, any name taken
with a note when there is no list, and Tab completing model names in a real pty."""
import re

import pexpect
import pytest

from nanocoder.anthropic_api import AnthropicModel
from nanocoder.llm import LLM
from scripted import ScriptedServer
from scripted_anthropic import ScriptedAnthropic
from test_repl import PROMPT, repl, turn  # noqa: F401 (fixture)

MODELS = ["gpt-4o", "gpt-4o-mini", "o1-preview", "scripted"]
ESCAPES = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"  # what prompt_toolkit may draw between the typed text and the completion


def completed(typed: str, rest: str) -> str:
    """The line as the pty draws it once Tab has added rest to what was typed."""
    return re.escape(typed) + ESCAPES + re.escape(rest)


@pytest.fixture
def server():  # the one test_repl's repl fixture talks to
    with ScriptedServer(models=MODELS) as srv:
        yield srv


def test_each_adapter_lists_the_providers_models(server):
    assert LLM("scripted", api_key="k", base_url=server.url).models() == MODELS
    with ScriptedAnthropic(models=["claude-sonnet-4-5", "claude-haiku-4-5"]) as aserver:
        claude = AnthropicModel("claude-sonnet-4-5", api_key="k", base_url=aserver.url)
        assert claude.models() == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert server.listed == aserver.listed == 1


@pytest.mark.parametrize("endpoint", ["none", "down"])
def test_no_list_is_none_and_one_line_why(endpoint):
    with ScriptedServer(models=None) as srv:  # a provider without GET /models: a 404
        url = srv.url if endpoint == "none" else "http://127.0.0.1:9/v1"  # down: nothing listens there
        llm = LLM("scripted", api_key="k", base_url=url, max_retries=0)
        assert llm.models() == [] == llm.models()
    assert "lists no models" in llm.unlisted and "\n" not in llm.unlisted
    assert srv.listed == (1 if endpoint == "none" else 0)  # asked once


def test_model_lists_checks_and_completes_names_asked_once(repl, server):  # noqa: F811
    assert server.listed == 0  # start-up never asks: it stays fast
    turn(repl, "/model", "model: scripted", "the provider offers: gpt-4o, gpt-4o-mini, o1-preview, scripted")
    turn(repl, "/model gpt-4o-mni", r"does not list 'gpt-4o-mni' \(close: gpt-4o-mini, gpt-4o;", r"model\s+stays\s+scripted")
    server.add("reply")
    turn(repl, "hi", "reply")
    assert server.requests[-1]["model"] == "scripted"
    repl.send("/model o1\t")  # one name starts so: Tab writes it out
    repl.expect(completed("o1", "-preview"))
    repl.send("\r")
    repl.expect_exact("model: o1-preview")
    repl.expect_exact(PROMPT)
    turn(repl, "/model gpt-4o-mini", "model: gpt-4o-mini")
    server.add("again")
    turn(repl, "hi", "again")
    assert server.requests[-1]["model"] == "gpt-4o-mini"
    assert server.listed == 1  # once, at the first /model


def test_tab_alone_asks_for_the_list(repl, server):  # noqa: F811
    repl.send("/model gpt-4o-m\t")
    repl.expect(completed("gpt-4o-m", "ini"))
    assert server.listed == 1
    repl.send("\r")
    repl.expect_exact("model: gpt-4o-mini")


def test_without_a_list_any_name_is_taken_with_a_note(repl, server):  # noqa: F811
    server.models = None  # the provider has no /models
    turn(repl, "/model anything-at-all", r"model: anything-at-all \(not checked: the provider lists no models")
    turn(repl, "/model", "model: anything-at-all", r"any\s+name\s+is\s+taken")
    server.add("reply")
    turn(repl, "hi", "reply")
    assert server.requests[-1]["model"] == "anything-at-all" and server.listed == 1
    repl.sendline("quit")
    repl.expect(pexpect.EOF)
