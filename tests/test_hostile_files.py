"""The file tools under hostile input: names that are not UTF-8, NUL bytes, FIFOs, devices and
files too big to load. Each answer is bounded, never blocks, and is text JSON can carry."""
import json
import os
import socket
import threading
import tracemalloc

import pytest

from nanocoder import Agent
from nanocoder.tools.base import ToolError, Workspace
from nanocoder.tools.edit import EditFileTool
from nanocoder.tools.files import ReadFileTool, WriteFileTool
from nanocoder.tools.search import GlobTool, GrepTool


def carried(result) -> str:
    """What the SDK and the session save do to a result: UTF-8 JSON (lone surrogates fail here)."""
    text = str(result)
    json.dumps(text, ensure_ascii=False).encode("utf-8")
    return text


@pytest.fixture
def odd_names(tmp_path):
    """A file and a folder whose names are latin-1 bytes, as an old archive leaves them."""
    os.mkdir(bytes(tmp_path) + b"/d\xff")
    with open(bytes(tmp_path) + b"/d\xff/x.txt", "wb") as f:
        f.write(b"needle\n")
    with open(bytes(tmp_path) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"hello\n")
    os.utime(bytes(tmp_path) + b"/caf\xe9.txt", (1_000_000, 1_000_000))  # glob: newest first
    return tmp_path


def test_names_that_are_not_utf8_are_shown_as_escapes(odd_names):
    workspace = Workspace(odd_names)
    assert carried(GlobTool(workspace).execute(pattern="*.txt")) == "d\\xff/x.txt\ncaf\\xe9.txt"
    assert carried(GrepTool(workspace).execute(pattern="needle|hello")) == (
        "caf\\xe9.txt:1:hello\nd\\xff/x.txt:1:needle")
    assert carried(GrepTool(workspace).execute(pattern="needle", path="d\\xff")) == "d\\xff/x.txt:1:needle"


def test_escaped_names_are_accepted_back(odd_names):
    workspace = Workspace(odd_names)
    assert ReadFileTool(workspace).execute(file_path="caf\\xe9.txt") == "     1\thello"
    assert ReadFileTool(workspace).execute(file_path="d\\xFF/x.txt") == "     1\tneedle"
    assert carried(EditFileTool(workspace).execute(file_path="caf\\xe9.txt", old_string="hello",
                                                   new_string="bye")).startswith("--- a/caf\\xe9.txt")
    assert open(bytes(odd_names) + b"/caf\xe9.txt", "rb").read() == b"bye\n"
    # a new file goes into the folder that exists with those bytes
    assert carried(WriteFileTool(workspace).execute(file_path="d\\xff/new.txt", content="n\n")) == (
        "Created d\\xff/new.txt (1 line)")
    assert open(bytes(odd_names) + b"/d\xff/new.txt", "rb").read() == b"n\n"
    # a file literally named with a backslash is found first
    (odd_names / "caf\\xe9.txt").write_text("literal\n")
    assert ReadFileTool(workspace).execute(file_path="caf\\xe9.txt") == "     1\tliteral"


def test_a_missing_name_suggests_escaped_neighbours(odd_names):
    with pytest.raises(ToolError) as error:
        ReadFileTool(Workspace(odd_names)).execute(file_path="cafe.txt")
    assert carried(str(error.value)) == "file not found: cafe.txt. Did you mean: caf\\xe9.txt?"


def test_nul_byte_in_a_path_is_a_clear_error(tmp_path):
    workspace = Workspace(tmp_path)
    calls = [(ReadFileTool, {"file_path": "a\0b"}), (WriteFileTool, {"file_path": "a\0b", "content": "x"}),
             (EditFileTool, {"file_path": "a\0b", "old_string": "x", "new_string": "y"}),
             (GlobTool, {"pattern": "*", "path": "a\0b"}), (GrepTool, {"pattern": "x", "path": "a\0b"})]
    for tool, args in calls:
        with pytest.raises(ToolError, match="NUL byte"):
            tool(workspace).execute(**args)
    # asking the user first must not fail either: nothing can be written there
    assert WriteFileTool(workspace).permission({"file_path": "a\0b", "content": "x"}).kind == "read"
    assert WriteFileTool(workspace).preview({"file_path": "a\0b", "content": "x"}) == ""
    assert EditFileTool(workspace).preview({"file_path": "a\0b", "old_string": "x", "new_string": "y"}) == ""
    assert os.listdir(tmp_path) == []


def test_agent_round_trip_of_a_name_that_is_not_utf8(server, llm, odd_names):
    """glob shows the name; the model sends it back to read_file; the history stays savable."""
    def read_what_glob_showed(request):
        shown = request["messages"][-1]["content"].split("\n")[-1]
        return {"tool_calls": [{"name": "read_file", "arguments": {"file_path": shown}}]}

    server.add({"tool_calls": [{"name": "glob", "arguments": {"pattern": "*.txt"}}]},
               read_what_glob_showed, "It says hello.")
    agent = Agent(llm=llm, cwd=odd_names)
    assert agent.chat("What does the café file say?") == "It says hello."
    results = [m["content"] for m in server.requests[2]["messages"] if m["role"] == "tool"]
    assert results == ["d\\xff/x.txt\ncaf\\xe9.txt", "     1\thello"]
    carried(json.dumps(agent.messages))


# --- nothing blocks: FIFOs, sockets, devices, directories ---

def finishes(fn, *args, **kwargs):
    """fn's result or exception, from a thread that must end; a blocked call fails the test."""
    outcome = []

    def run():
        try:
            outcome.append(fn(*args, **kwargs))
        except BaseException as e:  # noqa: B036 - handed to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), f"{fn} blocked"
    return outcome[0]


@pytest.fixture
def fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    yield tmp_path / "pipe"
    try:  # set free a call that blocked in open(), so that a failing run still ends
        os.close(os.open(tmp_path / "pipe", os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_read_file_refuses_what_is_not_a_file_at_once(tmp_path, fifo):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        tool = ReadFileTool(Workspace(tmp_path))
        answers = {p: finishes(tool.execute, file_path=p) for p in ["pipe", "sock", "/dev/zero", "/dev/null"]}
    assert {p: str(e) for p, e in answers.items() if isinstance(e, ToolError)} == {
        "pipe": "pipe is a FIFO, not a file; reading it could block or never end.",
        "sock": "sock is a socket, not a file; reading it could block or never end.",
        "/dev/zero": "/dev/zero is a device, not a file; reading it could block or never end.",
        "/dev/null": "/dev/null is a device, not a file; reading it could block or never end."}


def test_writing_tools_do_not_block_on_a_fifo(tmp_path, fifo):
    workspace = Workspace(tmp_path)
    written = finishes(WriteFileTool(workspace).execute, file_path="pipe", content="x")
    edited = finishes(EditFileTool(workspace).execute, file_path="pipe", old_string="a", new_string="b")
    assert isinstance(written, ToolError) and isinstance(edited, ToolError)
    assert str(written) == str(edited) == "pipe is a FIFO, not a file; reading it could block or never end."
    assert fifo.is_fifo()  # not replaced by a regular file


def test_searches_do_not_block_on_a_fifo_in_the_tree(tmp_path, fifo):
    (tmp_path / "a.txt").write_text("pipe dream\n")
    workspace = Workspace(tmp_path)
    assert finishes(GrepTool(workspace).execute, pattern="dream") == "a.txt:1:pipe dream"
    assert "a.txt" in finishes(GlobTool(workspace).execute, pattern="*").split("\n")
    error = finishes(GrepTool(workspace).execute, pattern="dream", path="pipe")
    assert isinstance(error, ToolError) and str(error) == "not a file or folder: pipe"


def test_agent_run_survives_a_fifo(server, llm, tmp_path, fifo):
    server.add({"tool_calls": [{"name": "read_file", "arguments": {"file_path": "pipe"}}]}, "It is a pipe.")
    assert finishes(Agent(llm=llm, cwd=tmp_path).chat, "read pipe") == "It is a pipe."
    result = server.requests[1]["messages"][-1]
    assert result["content"] == "Error: pipe is a FIFO, not a file; reading it could block or never end."


# --- reads are bounded by what is asked ---

def peak_memory(fn, *args, **kwargs):
    """(fn's result, the most memory Python held at once while it ran)."""
    tracemalloc.start()
    try:
        result = fn(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sparse(path, head: bytes, size: int):
    """A file of `size` bytes that costs only its head on disk: the rest is a hole (NUL bytes)."""
    path.write_bytes(head)
    os.truncate(path, size)
    return path


def test_huge_binary_file_is_told_from_its_first_bytes(tmp_path):
    sparse(tmp_path / "disk.img", b"", 2 << 30)
    answer, peak = peak_memory(ReadFileTool(Workspace(tmp_path)).execute, file_path="disk.img")
    assert answer == "Binary file disk.img (2,147,483,648 bytes); not shown."
    assert peak < 1 << 20


def test_a_few_lines_of_a_huge_log_cost_a_few_lines(tmp_path):
    head = "".join(f"2026-01-01 line {i}\n" for i in range(1, 50_001)).encode()
    sparse(tmp_path / "app.log", head, 300 << 20)  # text first, as far as anyone reads it
    answer, peak = peak_memory(ReadFileTool(Workspace(tmp_path)).execute, file_path="app.log", limit=10)
    rows = answer.split("\n")
    assert rows[:2] == ["     1\t2026-01-01 line 1", "     2\t2026-01-01 line 2"] and len(rows) == 11
    assert rows[-1] == ("[Showed lines 1-10 of a 314,572,800-byte file, too long to count its lines. "
                        "Read on with offset=11.]")
    assert peak < 1 << 20
    answer, peak = peak_memory(ReadFileTool(Workspace(tmp_path)).execute, file_path="app.log",
                               offset=49_999, limit=2)
    assert answer.split("\n")[:2] == [" 49999\t2026-01-01 line 49999", " 50000\t2026-01-01 line 50000"]
    assert peak < 1 << 20


def test_a_long_file_still_counts_its_lines(tmp_path):
    (tmp_path / "m.txt").write_bytes(b"x\n" * 300_000 + b"last")
    answer, peak = peak_memory(ReadFileTool(Workspace(tmp_path)).execute, file_path="m.txt", limit=1)
    assert answer == "     1\tx\n[Showed lines 1-1 of 300001. Read on with offset=2.]"
    assert peak < 4 << 20


def test_one_endless_line_costs_one_cut_line(tmp_path):
    (tmp_path / "min.js").write_bytes("中".encode() * 10_000_000)  # 30 MB, no newline
    answer, peak = peak_memory(ReadFileTool(Workspace(tmp_path)).execute, file_path="min.js")
    assert answer == "     1\t" + "中" * 2000 + " [... line cut]"  # UTF-8 though cut inside a character
    assert peak < 4 << 20


def test_grep_searches_big_files_and_numbers_lines_across_blocks(tmp_path):
    lines = [f"row {i} " + "x" * 40 for i in range(1, 200_001)]  # ~10 MB, many blocks
    lines[149_999] = "the needle"
    (tmp_path / "big.txt").write_text("\n".join(lines) + "\nneedle at the end")
    (tmp_path / "small.txt").write_text("needle\n")
    assert GrepTool(Workspace(tmp_path)).execute(pattern="needle") == (
        "big.txt:150000:the needle\nbig.txt:200001:needle at the end\nsmall.txt:1:needle")
    assert GrepTool(Workspace(tmp_path)).execute(pattern="^row 200000 ") == "big.txt:200000:" + lines[-1]
