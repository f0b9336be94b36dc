"""No lost work and no crash on hostile local state: sessions under a lock, each finished call recorded as it
finishes, calls on one file in the model's order, settings and session files that are one clear line, and
tool-call arguments assembled in linear time (the figure is in benchmarks/run.py)."""
from nanocoder.llm import _Assembler


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
