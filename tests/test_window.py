"""The window holds: one batch of calls larger than the window is cut to fit (results at least a one-line
stub; the oldest calls dropped, and named, when even stubs do not fit), and the next request always fits."""
import pytest

from nanocoder import Agent
from nanocoder.context import Context, collapse, estimate
from nanocoder.permissions import Permissions
from nanocoder.tools.base import Tool
from conftest import assert_valid_history


class Report(Tool):
    """A cheap read-only call with a result of a few hundred characters."""
    name = "report"
    description = "report on one item"
    parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    read_only = True

    def execute(self, n):
        return f"item {n}: ok\n" + "detail " * 40


@pytest.mark.parametrize("calls, window", [(600, 8000), (10_000, None)])
def test_one_batch_larger_than_the_window_is_cut_so_the_next_request_fits(server, llm, tmp_path, calls,
                                                                          window):
    server.add({"tool_calls": [{"name": "report", "arguments": {"n": n}} for n in range(calls)]},
               "a summary of the work so far", "all reported")
    agent = Agent(llm=llm, tools=[Report()], cwd=tmp_path, max_context=window, permissions=Permissions("yes"))
    assert agent.chat("report on every item") == "all reported"
    budget = Context(window).budget(llm, agent.schemas)
    last = server.requests[-1]
    assert last.get("tools") and last["messages"][-1]["role"] == "tool"  # the request after the batch
    assert estimate(last["messages"]) <= budget
    assert_valid_history(last["messages"])
    kept = [m for m in last["messages"] if m["role"] == "tool"]
    assert kept and all(m["content"].strip() for m in kept)  # every result kept is at least one line
    assert all("item" in m["content"] for m in kept)
    batch = next(m for m in last["messages"] if m.get("tool_calls"))
    if len(kept) < calls:  # the calls dropped are said to be
        assert f"{calls - len(kept)} earlier calls of this batch" in batch["content"]


def test_collapse_cuts_a_message_below_200_characters_when_that_is_its_share():
    calls = [{"id": f"c{n}", "type": "function", "function": {"name": "report", "arguments": "{}"}}
             for n in range(100)]
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": calls}]
    messages += [{"role": "tool", "tool_call_id": f"c{n}", "content": "x" * 300} for n in range(100)]
    collapse(messages, budget=5000)
    assert estimate(messages) <= 5000
    assert_valid_history(messages)
    assert len([m for m in messages if m["role"] == "tool"]) == 100  # stubs fit: nothing dropped
