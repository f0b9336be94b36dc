"""The agent tool: a sub-agent with an isolated context, its own working directory, no recursion."""
import json

from nanocoder import Agent


def test_sub_agent_starts_fresh_and_only_its_answer_returns(server, llm, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("the secret is 42\n")
    server.add(
        "First answer.",  # the parent's first turn, building some history
        {"tool_calls": [{"name": "agent", "arguments": {"task": "Find the secret in sub/notes.txt"}}]},
        {"tool_calls": [{"name": "bash", "arguments": {"command": "cd sub && cat notes.txt"}}]},  # the sub-agent
        "The secret is 42.",  # the sub-agent's final answer
        "The helper says the secret is 42.",  # the parent again
    )
    parent = Agent(llm=llm, cwd=tmp_path)
    parent.chat("hello")
    assert parent.chat("find the secret") == "The helper says the secret is 42."

    sub_first = server.requests[2]
    assert [m["role"] for m in sub_first["messages"]] == ["system", "user"]
    assert sub_first["messages"][1]["content"] == "Find the secret in sub/notes.txt"
    assert "First answer." not in str(sub_first["messages"])
    sub_tools = {t["function"]["name"] for t in sub_first["tools"]}
    assert "agent" not in sub_tools and {"bash", "read_file", "edit_file"} <= sub_tools
    assert "the secret is 42" in str(server.requests[3]["messages"])  # the sub-agent saw its tool output

    parent_after = server.requests[4]["messages"]
    assert parent_after[-1]["role"] == "tool" and parent_after[-1]["content"] == "The secret is 42."
    assert "cd sub" not in str(parent_after)  # the sub-agent's work stays out of the parent's context
    assert parent.workspace.cwd == tmp_path.resolve()  # its `cd` did not move the parent


def test_sub_agent_tokens_count_for_the_parent(server, llm, tmp_path):
    server.add({"tool_calls": [{"name": "agent", "arguments": {"task": "say hi"}}]}, "hi", "done")
    parent = Agent(llm=llm, cwd=tmp_path)
    parent.chat("delegate")
    assert len(server.requests) == 3  # parent, sub-agent, parent
    # The scripted server reports len(json(messages)) // 4 prompt tokens per request.
    assert parent.usage.prompt_tokens == sum(len(json.dumps(r["messages"])) // 4 for r in server.requests)
