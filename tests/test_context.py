"""Three-layer context compression: snip, summarise (one plain request, no tools), collapse."""
import json

from nanocoder import Agent
from nanocoder.context import SUMMARY_PROMPT, SUMMARY_TAG, Context, collapse, estimate, snip
from nanocoder.tools.base import Tool
from conftest import assert_valid_history

WINDOW = 8000


class Big(Tool):
    name = "big"
    description = "Produce a large output."
    parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    read_only = True

    def execute(self, n):
        return f"START{n} " + "x" * 6000 + f" END{n}"


def is_summary_request(req):
    return req["messages"][0]["content"] == SUMMARY_PROMPT


def model(rounds):
    """A scripted model that calls `big` `rounds` times, then answers; it also writes summaries."""
    def reply(req):
        if is_summary_request(req):
            return "The user wants big outputs; several were produced."
        done = sum(1 for m in req["messages"] if m["role"] == "tool")
        if any(SUMMARY_TAG in str(m.get("content")) for m in req["messages"]):
            done += 100  # after a summary the model finishes
        if done >= rounds:
            return "finished"
        return {"tool_calls": [{"name": "big", "arguments": {"n": done}}]}
    return reply


def test_long_session_stays_under_the_window(server, llm, tmp_path):
    for _ in range(60):
        server.add(model(rounds=30))
    agent = Agent(llm=llm, tools=[Big()], cwd=tmp_path, max_context=WINDOW)
    assert agent.chat("make big outputs") == "finished"
    summaries = [r for r in server.requests if is_summary_request(r)]
    turns = [r for r in server.requests if not is_summary_request(r)]
    assert summaries, "the history never got summarised"
    assert all("tools" not in r for r in summaries), "a summary request must send no tools"
    assert any(SUMMARY_TAG in str(m.get("content")) for r in turns for m in r["messages"])
    for r in turns:
        assert_valid_history(r["messages"])
        assert len(json.dumps(r["messages"]) + json.dumps(r["tools"])) // 4 < WINDOW
    snipped = [m for r in turns for m in r["messages"] if "old output snipped" in str(m.get("content"))]
    assert snipped, "old tool outputs were never snipped"


def test_snip_keeps_the_latest_round_whole():
    big = "y" * 5000
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
            _assistant("1"), {"role": "tool", "tool_call_id": "1", "content": big},
            _assistant("2"), {"role": "tool", "tool_call_id": "2", "content": big}]
    assert snip(msgs) == 1
    assert len(msgs[3]["content"]) < 1500 and "snipped" in msgs[3]["content"]
    assert msgs[5]["content"] == big


def test_compact_summarises_with_no_tools_and_keeps_pairs(server, llm, tmp_path):
    server.add({"tool_calls": [{"name": "glob", "arguments": {"pattern": "*"}}]}, "one",
               "two", "three", "SUMMARY-TEXT")
    agent = Agent(llm=llm, cwd=tmp_path)
    for prompt in ("a", "b", "c"):
        agent.chat(prompt)
    before = len(agent.messages)
    note = agent.compact()
    assert "summarised" in note
    assert "tools" not in server.requests[-1] and server.requests[-1]["messages"][0]["content"] == SUMMARY_PROMPT
    transcript = server.requests[-1]["messages"][1]["content"]
    assert "USER: a" in transcript and "glob" in transcript
    assert len(agent.messages) < before
    assert agent.messages[1]["content"] == f"{SUMMARY_TAG}\nSUMMARY-TEXT"
    assert_valid_history(agent.messages)


def test_failed_summary_still_fits(server, llm):
    server.add({"status": 500, "error": "summariser down"})
    msgs = [{"role": "system", "content": "s"}]
    for i in range(30):
        msgs += [{"role": "user", "content": f"q{i} " + "z" * 3000}, {"role": "assistant", "content": "a" * 3000}]
    ctx = Context(WINDOW)
    note = ctx.fit(msgs, llm)
    assert "summarised" in note
    assert estimate(msgs) <= ctx.budget(llm, ())
    assert "could not be summarised" in msgs[1]["content"]
    assert msgs[-1]["content"].startswith("a")  # the newest messages survive
    assert_valid_history(msgs)


def test_collapse_cuts_one_huge_turn():
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
            _assistant("1"), {"role": "tool", "tool_call_id": "1", "content": "w" * 200_000}]
    collapse(msgs, budget=2000)
    assert estimate(msgs) <= 2000
    assert_valid_history(msgs)


def test_small_history_is_left_alone(llm):
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]
    assert Context(WINDOW).fit(msgs, llm) is None
    assert len(msgs) == 2


def _assistant(call_id):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": "big", "arguments": "{}"}}]}


def test_incremental_token_count_matches_a_full_count():
    import random
    rng = random.Random(7)
    ctx, msgs = Context(WINDOW), [{"role": "system", "content": "s"}]
    for step in range(400):
        roll = rng.random()
        if roll < 0.7:
            msgs.append({"role": rng.choice(["user", "assistant"]), "content": "w" * rng.randint(0, 500)})
        elif roll < 0.8:
            msgs[0] = {"role": "system", "content": "p" * rng.randint(1, 900)}  # rebuilt each turn
        elif roll < 0.9 and len(msgs) > 3:
            del msgs[1:rng.randint(2, len(msgs) - 1)]  # what compression does
        else:
            msgs = [dict(m) for m in msgs]  # a resumed session: equal messages, new objects
        assert ctx.tokens(msgs) == estimate(msgs), f"step {step}"


def test_one_call_larger_than_the_window_is_cut_to_fit(server, llm, tmp_path):
    huge = "y" * 2_000_000  # a write_file carrying 2 MB, against an 8,000-token window
    answer = lambda req: "A big file was written." if is_summary_request(req) else "written"
    server.add({"tool_calls": [{"name": "write_file", "arguments": {"file_path": "big.txt", "content": huge}}]},
               *[answer] * 3)
    agent = Agent(llm=llm, cwd=tmp_path, max_context=WINDOW)
    assert agent.chat("write it") == "written"
    assert (tmp_path / "big.txt").read_text() == huge  # the tool got it whole; only what is re-sent is cut
    sent = [r for r in server.requests if not is_summary_request(r)][-1]
    assert estimate(sent["messages"]) + len(json.dumps(sent["tools"])) // 4 <= WINDOW
    [args] = [json.loads(c["function"]["arguments"]) for m in sent["messages"] for c in m.get("tool_calls") or ()]
    assert "characters cut" in args["content"] and args["file_path"] == "big.txt"


def test_compression_waits_for_the_high_water_mark_then_goes_low(server, llm, tmp_path):
    """Between two compressions every request extends the one before it: the cached prefix holds."""
    server.add(*[model(45)] * 80)  # the workload: 45 rounds of 6 KB outputs under a 16,000-token window
    Agent(llm=llm, tools=[Big()], cwd=tmp_path, max_context=16_000).chat("go")
    requests = [r["messages"] for r in server.requests if not is_summary_request(r)]
    breaks = [i for i in range(1, len(requests)) if requests[i][:len(requests[i - 1])] != requests[i - 1]]
    assert 1 <= len(breaks) <= len(requests) // 5, breaks  # a few one-step compressions, not one a round
