"""The agent loop and parallel tool calls, through the real openai SDK and the scripted server."""
import os
import signal
import threading
import time

import pytest

from nanocoder import Agent
from nanocoder import events as ev
from nanocoder.tools.base import Tool
from conftest import assert_valid_history


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


class Recorder:
    """An on_event consumer that keeps every event, and answers each approval request with `allow`."""
    def __init__(self, allow=True):
        self.events, self.allow = [], allow

    def __call__(self, event):
        self.events.append(event)
        if isinstance(event, ev.ApprovalRequested):
            event.answer(ev.Decision.once() if self.allow else ev.Decision.deny())

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


class Rendezvous(Tool):
    """Each call waits until all `parties` calls are running at once: proves concurrency without timing."""
    name = "meet"
    description = "wait for the others"
    parameters = {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}
    read_only = True

    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=10)

    def execute(self, who):
        self.barrier.wait()  # raises BrokenBarrierError if the calls ran one after another
        return f"met {who}"


def test_chat_answers_keeps_history_and_prints_nothing(server, llm, tmp_path, capfd):
    server.add("Hello there, how can I help?", "You said hi before.")
    agent = Agent(llm=llm, cwd=tmp_path)
    assert agent.chat("hi") == "Hello there, how can I help?"
    assert agent.chat("what did I say?") == "You said hi before."
    second = server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "hi" and second[2]["content"] == "Hello there, how can I help?"
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_parallel_calls_run_concurrently_and_answer_in_order(server, llm, tmp_path):
    server.add({"tool_calls": [call("meet", who=w) for w in "abc"]}, "all met")
    agent = Agent(llm=llm, tools=[Rendezvous(3)], cwd=tmp_path)
    assert agent.chat("meet") == "all met"
    msgs = server.requests[1]["messages"]
    calls = msgs[-4]["tool_calls"]
    results = msgs[-3:]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in calls]
    assert [r["content"] for r in results] == ["met a", "met b", "met c"]
    assert_valid_history(msgs)


def test_custom_tool_is_offered_and_runs(server, llm, tmp_path):
    class Upper(Tool):
        name = "upper"
        description = "Upper-case a word."
        parameters = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}

        def execute(self, word):
            return word.upper()

    server.add({"tool_calls": [call("upper", word="shout")]}, "done")
    agent = Agent(llm=llm, tools=[Upper()], cwd=tmp_path)
    agent.chat("go")
    offered = {t["function"]["name"] for t in server.requests[0]["tools"]}
    assert {"upper", "bash", "read_file", "write_file", "edit_file", "glob", "grep", "agent"} <= offered
    assert server.requests[1]["messages"][-1]["content"] == "SHOUT"


def test_bad_tool_calls_become_errors_the_model_can_fix(server, llm, tmp_path):
    server.add({"tool_calls": [
        {"name": "read_file", "arguments": "{not json"},
        call("teleport", where="mars"),
        call("read_file"),
        call("read_file", file_path=42),
        {"name": "glob", "arguments": ""},
    ]}, "ok")
    agent = Agent(llm=llm, cwd=tmp_path)
    agent.chat("go")
    results = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert len(results) == 5
    assert "not valid JSON" in results[0] and '"file_path"' in results[0]
    assert "unknown tool 'teleport'" in results[1] and "read_file" in results[1]
    assert "missing required argument(s): file_path" in results[2]
    assert "'file_path' must be string" in results[3]
    assert "missing required argument(s): pattern" in results[4]
    assert_valid_history(server.requests[1]["messages"])


def test_tool_exception_is_reported_not_raised(server, llm, tmp_path):
    class Broken(Tool):
        name = "broken"
        read_only = True

        def execute(self):
            raise RuntimeError("boom")

    server.add({"tool_calls": [call("broken")]}, "recovered")
    assert Agent(llm=llm, tools=[Broken()], cwd=tmp_path).chat("go") == "recovered"
    assert "RuntimeError: boom" in server.requests[1]["messages"][-1]["content"]


def test_declined_tool_does_not_run(server, llm, tmp_path):
    server.add({"tool_calls": [call("write_file", file_path="x.txt", content="hi")]}, "ok")
    rec = Recorder(allow=False)
    Agent(llm=llm, on_event=rec, approvals=True, cwd=tmp_path).chat("write")
    assert not (tmp_path / "x.txt").exists()
    assert "declined" in server.requests[1]["messages"][-1]["content"]
    [done] = rec.of(ev.ToolFinished)  # shown as a call that did not run, marked as an error
    assert done.name == "write_file" and done.is_error and "declined" in done.result


def test_every_event_kind_in_order(server, llm, tmp_path):
    (tmp_path / "a.txt").write_text("A\n")
    server.add({"content": "Reading.", "reasoning": "hmm", "tool_calls": [call("read_file", file_path="a.txt")]},
               "It says A.")
    rec = Recorder()
    Agent(llm=llm, on_event=rec, cwd=tmp_path).chat("read a.txt")
    kinds = [type(e).__name__ for e in rec.events]
    collapsed = [k for i, k in enumerate(kinds) if not i or k != kinds[i - 1]]
    assert collapsed == ["TurnStarted", "Reasoning", "Text", "Usage", "ToolStarted", "ToolFinished", "RoundEnded",
                         "Text", "Usage", "RoundEnded", "TurnEnded"]
    assert "".join(e.text for e in rec.of(ev.Text)) == "Reading.It says A."
    [start], [done] = rec.of(ev.ToolStarted), rec.of(ev.ToolFinished)
    assert start.call_id == done.call_id and done.args == {"file_path": "a.txt"} and not done.is_error
    assert "A" in done.result and isinstance(done.duration, float)
    assert rec.of(ev.Usage)[0].prompt_tokens > 0
    [end] = rec.of(ev.TurnEnded)
    assert (end.answer, end.reason, end.messages[-1]["content"]) == ("It says A.", "success", "It says A.")


def test_parallel_results_pair_with_their_calls_by_id(server, llm, tmp_path):
    for name in "abcd":
        (tmp_path / name).write_text(f"content {name}\n")
    server.add({"tool_calls": [call("read_file", file_path=n) for n in "abcd"] + [call("read_file", file_path="zz")]},
               "done")
    rec = Recorder()
    Agent(llm=llm, on_event=rec, cwd=tmp_path).chat("read all")
    started = {e.call_id: e.args["file_path"] for e in rec.of(ev.ToolStarted)}
    finished = {e.call_id: e for e in rec.of(ev.ToolFinished)}
    assert len(started) == 5 and started.keys() == finished.keys()
    for call_id, name in started.items():
        assert finished[call_id].is_error == (name == "zz")
        assert name == "zz" or f"content {name}" in finished[call_id].result


def test_a_tool_error_is_an_error_result_the_model_reads(server, llm, tmp_path):
    from nanocoder.tools.base import ToolError

    class Picky(Tool):
        name, read_only = "picky", True

        def execute(self):
            raise ToolError("pick something else")

    server.add({"tool_calls": [call("picky")]}, "ok")
    rec = Recorder()
    Agent(llm=llm, tools=[Picky()], on_event=rec, cwd=tmp_path).chat("go")
    [done] = rec.of(ev.ToolFinished)
    assert done.is_error and done.result == "Error: pick something else"
    assert server.requests[1]["messages"][-1]["content"] == "Error: pick something else"


def test_a_long_task_of_150_rounds_finishes(server, llm, tmp_path):
    server.add(*[{"tool_calls": [call("glob", pattern=f"*.{n}")]} for n in range(150)], "finished")
    agent = Agent(llm=llm, cwd=tmp_path)
    assert agent.chat("work long") == "finished"
    assert len(server.requests) == 151


def test_max_turns_stops_the_turn_with_its_reason(server, llm, tmp_path):
    server.add(*[{"tool_calls": [call("glob", pattern=f"*.{n}")]} for n in range(5)])
    rec = Recorder()
    answer = Agent(llm=llm, on_event=rec, cwd=tmp_path, max_turns=3).chat("work")
    assert answer == "" and len(server.requests) == 3  # the model gave no answer; why is the notice
    assert rec.of(ev.TurnEnded)[0].reason == "max_turns" and "3 rounds" in rec.of(ev.Notice)[-1].message
    assert_valid_history(rec.of(ev.TurnEnded)[0].messages)


def test_a_looping_model_is_warned_then_stopped(server, llm, tmp_path):
    server.add(*[{"tool_calls": [call("glob", pattern="*.py")]}] * 10)
    rec = Recorder()
    Agent(llm=llm, on_event=rec, cwd=tmp_path).chat("loop")
    assert rec.of(ev.TurnEnded)[0].reason == "loop" and "same calls" in rec.of(ev.Notice)[-1].message
    assert len(server.requests) == 6  # warned from the third round on, stopped after the sixth
    warned = [m["content"] for m in server.requests[3]["messages"] if m["role"] == "tool"]
    assert "same calls" in warned[-1] and "same calls" not in warned[0]


def test_a_gate_blocks_a_call_and_the_model_reads_why(server, llm, tmp_path):
    server.add({"tool_calls": [call("bash", command="rm -f x"), call("glob", pattern="*")]}, "ok")
    (tmp_path / "x").write_text("keep")
    gate = lambda name, args: ev.Decision.deny("no rm here") if "rm" in args.get("command", "") \
        else ev.Decision.once()
    Agent(llm=llm, cwd=tmp_path, gate=gate).chat("clean")
    assert (tmp_path / "x").exists()
    results = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert "blocked by the gate: no rm here" in results[0] and "x" in results[1]


def test_sub_agent_events_come_one_level_deeper(server, llm, tmp_path):
    server.add({"tool_calls": [call("agent", task="look")]}, {"tool_calls": [call("glob", pattern="*")]},
               "sub done", "parent done")
    rec = Recorder()
    Agent(llm=llm, on_event=rec, cwd=tmp_path).chat("delegate")
    depths = [(type(e).__name__, e.depth) for e in rec.events if isinstance(e, (ev.ToolStarted, ev.TurnEnded))]
    assert depths == [("ToolStarted", 0), ("ToolStarted", 1), ("TurnEnded", 1), ("TurnEnded", 0)]


def test_ctrl_c_during_tools_kills_them_and_keeps_history_valid(server, llm, tmp_path):
    marker = tmp_path / "pid"
    server.add({"tool_calls": [call("bash", command=f"echo $$ > {marker}; sleep 30"),
                               call("read_file", file_path="nothing.txt")]}, "after")
    agent = Agent(llm=llm, cwd=tmp_path)

    def interrupt():
        for _ in range(100):
            if marker.exists() and marker.read_text().strip():
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        agent.chat("run it")
    pid = int(marker.read_text())
    for _ in range(50):  # the command's process group is killed, not left running
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the interrupted command is still running")
    assert_valid_history(agent.messages)
    tool_results = [m["content"] for m in agent.messages if m["role"] == "tool"]
    assert len(tool_results) == 2 and any("interrupted" in r or "killed" in r.lower() for r in tool_results)
    assert agent.chat("go on") == "after"  # the conversation goes on, and the provider accepts it
    assert_valid_history(server.requests[-1]["messages"])


def test_dropped_stream_never_runs_a_half_received_call(server, llm, tmp_path):
    from nanocoder.llm import LLMError
    server.add({"tool_calls": [call("write_file", file_path="x.txt", content="half")], "drop_after": 3})
    agent = Agent(llm=llm, cwd=tmp_path)
    with pytest.raises(LLMError):
        agent.chat("write")
    assert not (tmp_path / "x.txt").exists()
    assert_valid_history(agent.messages)


def test_odd_replies_and_results_still_make_a_valid_history(server, llm, tmp_path):
    class Counter(Tool):
        name = "count"
        read_only = True

        def execute(self):
            return 42  # a custom tool that forgot to return text

    server.add({"tool_calls": [call("count")]}, {"content": ""}, "fine")
    agent = Agent(llm=llm, tools=[Counter()], cwd=tmp_path)
    assert agent.chat("count") == ""  # it said nothing at all (a notice says so)
    agent.chat("again")
    sent = server.requests[-1]["messages"]
    assert_valid_history(sent)
    assert sent[3]["content"] == "42"
    assert all(m["content"] is not None for m in sent if m["role"] == "assistant" and not m.get("tool_calls"))
