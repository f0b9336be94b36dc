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


def test_the_terminal_never_decides_by_tool_name_or_result_text():
    """Nothing in the modules that draw tells an error, a diff or a kind of call by a tool's name or
    its result's text: those come as the events' fields (is_error, diff)."""
    import ast
    from pathlib import Path

    import nanocoder
    found = []
    for module in ("cli.py", "repl.py", "view.py"):
        tree = ast.parse((Path(nanocoder.__file__).parent / module).read_text())
        for node in ast.walk(tree):
            names = [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
            if isinstance(node, ast.Compare) and {"name", "result"} & set(names) and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, str) for c in [node.left, *node.comparators]):
                found.append(f"{module}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("startswith", "endswith") and "result" in names:
                found.append(f"{module}:{node.lineno}")
    assert found == []
