"""No lost work and no crash on hostile local state: sessions under a lock, each finished call recorded as it
finishes, calls on one file in the model's order, settings and session files that are one clear line, and
tool-call arguments assembled in linear time (the figure is in benchmarks/run.py)."""
import multiprocessing
import os

from nanocoder.llm import _Assembler
from nanocoder.session import Session, sessions_dir


def _assemble(pieces: list) -> str:
    parts = _Assembler()
    parts.add({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}}]})
    for piece in pieces:
        parts.add({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}]})
    parts.add({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    return parts.reply().tool_calls[0].arguments


def test_tool_arguments_are_assembled_as_sent_even_from_many_empty_object_pieces():
    assert _assemble(['{"a": ', "{}", "}"]) == '{"a": {}}'
    assert _assemble(["["] + ["{}"] * 5000) == "[" + "{}" * 5000  # kept as sent (then refused as no object)
    assert _assemble(['{"a": [{}, ', '{}]}', '{"a": [{}, {}]}']) == '{"a": [{}, {}]}'  # a re-sent whole
    assert _assemble(['{"k": "', "x" * 100, '"}', '{"k": "' + "x" * 100 + '"}']) == '{"k": "' + "x" * 100 + '"}'


# --- item 4: two processes saving one session at the same moment never lose a turn -------------------------

def _writer(home, ids, who, barrier):
    os.environ["HOME"] = home
    for n, session_id in enumerate(ids):  # a fresh shared session each time: after a fork they part ways
        session = Session.load(session_id)
        session.messages = [*session.messages, {"role": "user", "content": f"{who} {n}"}]
        barrier.wait()  # both save at the same moment
        session.save()


def test_two_processes_saving_one_session_at_once_never_lose_a_turn(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    shared = [Session(model="m", cwd="/w", messages=[{"role": "user", "content": "start"}]) for _ in range(100)]
    for session in shared:
        session.save()
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(2, timeout=30)
    writers = [fork.Process(target=_writer, args=(str(tmp_path), [s.id for s in shared], who, barrier))
               for who in "ab"]
    for p in writers:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    kept = {m["content"] for path in sessions_dir().glob("*.json") for m in Session.load(path.stem).messages}
    lost = [f"{who} {n}" for who in "ab" for n in range(len(shared)) if f"{who} {n}" not in kept]
    assert lost == []
