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


def test_ctrl_c_stops_a_running_sub_agent(server, llm, tmp_path):
    import threading
    import time
    started = tmp_path / "started"
    server.add({"tool_calls": [{"name": "agent", "arguments": {"task": "slow work"}}]},
               {"tool_calls": [{"name": "bash", "arguments": {"command": f"touch {started}; sleep 30"}}]},
               {"tool_calls": [{"name": "write_file", "arguments": {"file_path": "late.txt", "content": "x"}}]})
    parent = Agent(llm=llm, cwd=tmp_path)
    result = {}

    def run():
        try:
            parent.chat("delegate")
        except Exception as e:  # noqa: BLE001 - recorded for the assertion below
            result["error"] = e

    # The parent's turn runs in a thread here, so "Ctrl+C" is the cancel() the CLI's handler calls.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(100):
        if started.exists():
            break
        time.sleep(0.05)
    parent.cancel()
    thread.join(timeout=10)
    time.sleep(0.3)
    assert not thread.is_alive(), "the parent did not stop"
    assert len(server.requests) == 2  # neither agent made a request after it was stopped...
    assert not (tmp_path / "late.txt").exists()  # ...and ran no further tool
    assert type(result["error"]).__name__ == "Cancelled"
