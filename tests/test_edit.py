import os
import threading

import pytest

from nanocoder.tools.base import ToolError, Workspace
from nanocoder.tools.edit import EditFileTool


def edit(tmp_path, **kwargs):
    return str(EditFileTool(Workspace(tmp_path)).execute(**kwargs))


def refused(tmp_path, **kwargs) -> str:
    """The ToolError message of an edit that must fail."""
    with pytest.raises(ToolError) as error:
        edit(tmp_path, **kwargs)
    return str(error.value)


def test_unique_replace_changes_only_that_spot_and_returns_diff(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    return 1\n\ndef g():\n    return 2\n")
    workspace = Workspace(tmp_path)
    result = str(EditFileTool(workspace).execute(file_path="m.py", old_string="return 2", new_string="return 3"))
    assert (tmp_path / "m.py").read_text() == "def f():\n    return 1\n\ndef g():\n    return 3\n"
    assert result.startswith("--- a/m.py\n+++ b/m.py\n@@")
    assert "-    return 2\n+    return 3" in result


def test_zero_matches_suggests_similar_lines(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\ndef compute(a, b):\n    return a + b\n")
    result = refused(tmp_path, file_path="m.py", old_string="def compute(a,b):\n  return a+b", new_string="pass")
    assert result.startswith("old_string not found in m.py.")
    assert "The most similar lines are:\n2: def compute(a, b):" in result
    assert (tmp_path / "m.py").read_text() == "x = 1\ndef compute(a, b):\n    return a + b\n"


def test_zero_matches_without_similar_lines_has_no_hint(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n")
    result = refused(tmp_path, file_path="m.py", old_string="completely different", new_string="y")
    assert result == "old_string not found in m.py."


def test_multiple_matches_gives_count(tmp_path):
    (tmp_path / "m.py").write_text("a = 1\nb = 1\nc = 1\n")
    result = refused(tmp_path, file_path="m.py", old_string="= 1", new_string="= 2")
    assert result.startswith("old_string occurs 3 times in m.py")
    assert "surrounding" in result
    assert (tmp_path / "m.py").read_text() == "a = 1\nb = 1\nc = 1\n"


def test_crlf_file_matches_lf_old_string_and_stays_crlf(tmp_path):
    original = b"one\r\ntwo\r\nthree\r\nfour\r\n"
    (tmp_path / "w.txt").write_bytes(original)
    edit(tmp_path, file_path="w.txt", old_string="two\nthree", new_string="2\n3")
    assert (tmp_path / "w.txt").read_bytes() == b"one\r\n2\r\n3\r\nfour\r\n"


@pytest.mark.parametrize("head, newline", [
    (b"caf\xe9 \x80\xff", b"\n"),  # latin-1
    (b"print(\x93hi\x94)  # \x96 dash", b"\r\n"),  # cp1252 smart quotes and dash, CRLF
])
def test_non_utf8_file_keeps_every_other_byte(tmp_path, head, newline):
    (tmp_path / "l.txt").write_bytes(head + newline + b"x = 1" + newline)
    edit(tmp_path, file_path="l.txt", old_string="x = 1", new_string="x = 2")
    assert (tmp_path / "l.txt").read_bytes() == head + newline + b"x = 2" + newline


def test_character_the_encoding_cannot_hold_is_refused(tmp_path):
    (tmp_path / "l.txt").write_bytes(b"caf\xe9\nx = 1\n")
    result = refused(tmp_path, file_path="l.txt", old_string="x = 1", new_string="x = \u4e2d")
    assert result.startswith("l.txt is latin-1")
    assert (tmp_path / "l.txt").read_bytes() == b"caf\xe9\nx = 1\n"


def test_utf8_bom_kept(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfh\xc3\xa9llo\n")
    edit(tmp_path, file_path="b.txt", old_string="llo", new_string="LLO")
    assert (tmp_path / "b.txt").read_bytes() == b"\xef\xbb\xbfh\xc3\xa9LLO\n"


def test_missing_final_newline_stays_missing(tmp_path):
    (tmp_path / "n.txt").write_text("a\nb\nc")
    result = edit(tmp_path, file_path="n.txt", old_string="b", new_string="B")
    assert (tmp_path / "n.txt").read_text() == "a\nB\nc"
    assert result.endswith(" c\n\\ No newline at end of file")


def test_file_mode_kept(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    edit(tmp_path, file_path="run.sh", old_string="hi", new_string="bye")
    assert script.read_text() == "#!/bin/sh\necho bye\n"
    assert script.stat().st_mode & 0o777 == 0o755


def test_no_temp_files_left_behind(tmp_path):
    (tmp_path / "f.txt").write_text("a\n")
    edit(tmp_path, file_path="f.txt", old_string="a", new_string="b")
    refused(tmp_path, file_path="f.txt", old_string="zzz", new_string="b")
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]


def test_empty_old_string_points_to_write_file(tmp_path):
    (tmp_path / "f.txt").write_text("a\n")
    result = refused(tmp_path, file_path="f.txt", old_string="", new_string="b")
    assert result.startswith("old_string is empty") and "write_file" in result


def test_identical_strings_refused(tmp_path):
    (tmp_path / "f.txt").write_text("a\n")
    result = refused(tmp_path, file_path="f.txt", old_string="a", new_string="a")
    assert result.startswith("old_string and new_string are the same")


def test_missing_file(tmp_path):
    result = refused(tmp_path, file_path="nope.py", old_string="a", new_string="b")
    assert result.startswith("file not found: nope.py")
    assert not (tmp_path / "nope.py").exists()


def test_path_outside_cwd_has_absolute_headers(tmp_path):
    (tmp_path / "f.txt").write_text("a\n")
    (tmp_path / "sub").mkdir()
    result = str(EditFileTool(Workspace(tmp_path / "sub")).execute(
        file_path="../f.txt", old_string="a", new_string="b"))
    assert result.startswith(f"--- {tmp_path / 'f.txt'}\n+++ {tmp_path / 'f.txt'}\n")


def test_parallel_edits_of_one_file_all_land(tmp_path):
    lines = [f"line {i} = {i}\n" for i in range(40)]
    (tmp_path / "big.py").write_text("".join(lines))
    tool = EditFileTool(Workspace(tmp_path))
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(tool.execute(
        file_path="big.py", old_string=f"line {i} = {i}\n", new_string=f"line {i} = changed\n")))
        for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40  # a refused edit would have raised, and appended nothing
    assert (tmp_path / "big.py").read_text() == "".join(f"line {i} = changed\n" for i in range(40))


def test_an_edit_to_a_file_changed_since_it_was_read_is_refused(tmp_path):
    from nanocoder.tools.files import ReadFileTool, WriteFileTool
    ws = Workspace(tmp_path)
    (tmp_path / "a.py").write_text("x = 1\ny = 1\n")
    ReadFileTool(ws).execute(file_path="a.py")
    (tmp_path / "a.py").write_text("x = 1\ny = 1\nz = 1  # added by the user\n")
    tool = EditFileTool(ws)
    with pytest.raises(ToolError, match="changed on disk since you last read it; read it again"):
        tool.execute(file_path="a.py", old_string="x = 1", new_string="x = 2")
    with pytest.raises(ToolError, match="changed on disk"):
        WriteFileTool(ws).execute(file_path="a.py", content="x = 2\n")
    assert "added by the user" in (tmp_path / "a.py").read_text()  # nothing was lost
    ReadFileTool(ws).execute(file_path="a.py")
    tool.execute(file_path="a.py", old_string="x = 1", new_string="x = 2")
    # its own edits do not make the file stale: a second edit goes through
    tool.execute(file_path="a.py", old_string="y = 1", new_string="y = 2")
    assert (tmp_path / "a.py").read_text() == "x = 2\ny = 2\nz = 1  # added by the user\n"
