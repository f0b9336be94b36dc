"""view.Stream: finished blocks are drawn once, never split inside a code fence."""
import io

from rich.console import Console

from nanocoder.view import Stream


def stream():
    out = io.StringIO()
    return Stream(Console(file=out, width=80, force_terminal=False)), out


def test_blank_line_inside_a_fence_does_not_end_the_block():
    md, out = stream()
    for piece in ["Intro para", "graph.\n", "\n```py", "thon\ndef f():\n", "\n", "    return 1\n"]:
        md.feed(piece)
    assert "Intro paragraph." in out.getvalue()  # finished: drawn
    assert md.tail.startswith("```python\ndef f():\n\n")  # open fence: still waiting
    assert "def f" not in out.getvalue()
    md.feed("```\n\nLast")
    assert "return 1" in out.getvalue() and md.tail == "Last"
    md.end()
    text = out.getvalue()
    assert text.count("Intro paragraph.") == 1 and text.count("return 1") == 1 and "Last" in text
    assert md.tail == "" and md.scanned == 0 and not md.fenced
