import os

import pytest

from nanocoder.tools.base import ToolError, Workspace
from nanocoder.tools.files import ReadFileTool, WriteFileTool, load_text, save_text
from nanocoder.tools.search import GlobTool, GrepTool, glob_regex


def read(tmp_path, **kwargs):
    return ReadFileTool(Workspace(tmp_path)).execute(**kwargs)


def refused(tool, **kwargs) -> str:
    """The ToolError message of a call that must fail."""
    with pytest.raises(ToolError) as error:
        tool.execute(**kwargs)
    return str(error.value)


# --- read_file ---

def test_read_numbers_lines_like_cat_n(tmp_path):
    (tmp_path / "a.txt").write_text("first\nsecond\n")
    assert read(tmp_path, file_path="a.txt") == "     1\tfirst\n     2\tsecond"


def test_read_offset_and_limit(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"l{i}\n" for i in range(1, 11)))
    result = read(tmp_path, file_path="a.txt", offset=4, limit=2)
    assert result == "     4\tl4\n     5\tl5\n[Showed lines 4-5 of 10. Read on with offset=6.]"
    assert read(tmp_path, file_path="a.txt", offset=10) == "    10\tl10"


def test_read_offset_past_end(tmp_path):
    (tmp_path / "a.txt").write_text("x\ny\n")
    assert refused(ReadFileTool(Workspace(tmp_path)), file_path="a.txt", offset=5) == (
        "offset 5 is past the end; a.txt has 2 lines.")


def test_read_default_limit_is_2000_lines(tmp_path):
    (tmp_path / "a.txt").write_text("x\n" * 2500)
    result = read(tmp_path, file_path="a.txt")
    assert result.count("\tx") == 2000
    assert result.endswith("[Showed lines 1-2000 of 2500. Read on with offset=2001.]")


def test_read_cuts_long_lines_and_caps_output(tmp_path):
    (tmp_path / "a.txt").write_text(("y" * 5000 + "\n") * 200)
    result = read(tmp_path, file_path="a.txt")
    first = result.split("\n")[0]
    assert first == "     1\t" + "y" * 2000 + " [... line cut]"
    assert len(result) <= 101_000
    assert result.endswith(". Read on with offset=" + str(result.count("\t") + 1) + ".]")


def test_read_crlf_shows_no_carriage_returns(tmp_path):
    (tmp_path / "w.txt").write_bytes(b"a\r\nb\r\n")
    assert read(tmp_path, file_path="w.txt") == "     1\ta\n     2\tb"


def test_read_shows_bom_and_latin1_files_as_text(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfh\xc3\xa9\r\nx\r\n")
    (tmp_path / "l.txt").write_bytes(b"ok\ncaf\xe9\n")
    assert read(tmp_path, file_path="b.txt") == "     1\th\u00e9\n     2\tx"
    assert read(tmp_path, file_path="l.txt") == "     1\tok\n     2\tcaf\u00e9"


def test_read_binary_is_described(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\0\0" + bytes(12339))
    assert read(tmp_path, file_path="x.png") == "Binary file x.png (12,345 bytes); not shown."


def test_read_missing_file_suggests_similar(tmp_path):
    (tmp_path / "config.py").write_text("")
    tool = ReadFileTool(Workspace(tmp_path))
    assert refused(tool, file_path="confg.py") == "file not found: confg.py. Did you mean: config.py?"
    assert refused(tool, file_path="zzz.txt") == "file not found: zzz.txt."


def test_read_directory_and_empty_file(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "e.txt").write_text("")
    assert refused(ReadFileTool(Workspace(tmp_path)), file_path="d") == (
        "d is a directory, not a file; use glob to list its files.")
    assert read(tmp_path, file_path="e.txt") == "e.txt is empty."


# --- write_file and the codec ---

def test_write_creates_parents(tmp_path):
    workspace = Workspace(tmp_path)
    result = WriteFileTool(workspace).execute(file_path="a/b/c.txt", content="x\ny\n")
    assert str(result) == "Created a/b/c.txt (2 lines)"
    assert (tmp_path / "a/b/c.txt").read_text() == "x\ny\n"


def test_write_keeps_crlf_and_mode_of_existing_file(tmp_path):
    target = tmp_path / "run.bat"
    target.write_bytes(b"old\r\n")
    target.chmod(0o755)
    result = WriteFileTool(Workspace(tmp_path)).execute(file_path="run.bat", content="one\ntwo\r\nthree")
    assert str(result) == "Overwrote run.bat (3 lines)"
    assert target.read_bytes() == b"one\r\ntwo\r\nthree"
    assert target.stat().st_mode & 0o777 == 0o755
    assert os.listdir(tmp_path) == ["run.bat"]


def test_write_refuses_characters_the_encoding_cannot_hold(tmp_path):
    (tmp_path / "l.txt").write_bytes(b"caf\xe9\n")
    result = refused(WriteFileTool(Workspace(tmp_path)), file_path="l.txt", content="\u4e2d\n")
    assert result.startswith("l.txt is latin-1")
    assert (tmp_path / "l.txt").read_bytes() == b"caf\xe9\n"



def test_write_preview_is_the_diff_the_call_then_makes(tmp_path):
    """The approval shows what the write will do: a new file from /dev/null, a CRLF file's lines, a binary file
    replaced whole."""
    files = {"new.txt": None, "crlf.txt": b"a\r\nb\r\n", "lf.txt": b"a\n", "blob.bin": b"\0\x01\x02"}
    for name, data in files.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        tool, args = WriteFileTool(Workspace(tmp_path)), {"file_path": name, "content": "a\r\nc\r\n"}
        preview = tool.preview(args)
        assert preview == tool.execute(**args).diff and preview.startswith("---"), name
    assert "--- /dev/null" in WriteFileTool(Workspace(tmp_path)).preview({"file_path": "x", "content": "y"})
def test_codec_round_trips_bytes(tmp_path):
    for data in [b"a\r\nb", b"\xef\xbb\xbfx\n", b"caf\xe9\n\x81\x9d", b"mixed\r\nand\nlf\n", b"a\r\r\nb\r\n"]:
        path = tmp_path / "f"
        path.write_bytes(data)
        file = load_text(path)
        save_text(path, file.text, file)
        assert path.read_bytes() == data
    (tmp_path / "w").write_bytes(b"a\r\nb\r\n")
    assert load_text(tmp_path / "w").newline == "\r\n" and load_text(tmp_path / "w").text == "a\nb\n"
    (tmp_path / "m").write_bytes(b"a\r\nb\n")  # mixed: kept as it is
    assert load_text(tmp_path / "m").newline == "\n" and load_text(tmp_path / "m").text == "a\r\nb\n"


# --- glob and grep ---

@pytest.fixture
def tree(tmp_path):
    (tmp_path / "src/pkg").mkdir(parents=True)
    (tmp_path / "src/app.py").write_text("import os\n\ndef main():\n    return os.getcwd()\n")
    (tmp_path / "src/pkg/util.py").write_text("def helper():\n    return 42\n")
    (tmp_path / "src/pkg/notes.md").write_text("main notes\n")
    (tmp_path / "top.py").write_text("from src.app import main\n")
    (tmp_path / "node_modules/lib").mkdir(parents=True)
    (tmp_path / "node_modules/lib/x.py").write_text("def main(): pass\n")
    (tmp_path / "blob.bin").write_bytes(b"main\0\0\0")
    for i, name in enumerate(["top.py", "src/app.py", "src/pkg/util.py"]):
        os.utime(tmp_path / name, (1_000_000 + i, 1_000_000 + i))
    return tmp_path


def test_glob_finds_recursively_newest_first(tree):
    assert GlobTool(Workspace(tree)).execute(pattern="**/*.py") == "src/pkg/util.py\nsrc/app.py\ntop.py"
    assert GlobTool(Workspace(tree)).execute(pattern="*.md") == "src/pkg/notes.md"
    assert GlobTool(Workspace(tree)).execute(pattern="src/*.py") == "src/app.py"


def test_glob_path_and_relative_results(tree):
    assert GlobTool(Workspace(tree)).execute(pattern="*.py", path="src/pkg") == "src/pkg/util.py"
    assert GlobTool(Workspace(tree / "src")).execute(pattern="*.py", path="..") == (
        f"pkg/util.py\napp.py\n{tree / 'top.py'}")


def test_glob_no_match_and_bad_path(tree):
    assert GlobTool(Workspace(tree)).execute(pattern="*.rs") == "No files match *.rs in .."
    assert refused(GlobTool(Workspace(tree)), pattern="*", path="nope") == "path not found: nope"


def test_glob_honours_root_gitignore(tree):
    (tree / ".gitignore").write_text("# generated\npkg/\n")
    assert GlobTool(Workspace(tree)).execute(pattern="**/*.py") == "src/app.py\ntop.py"


def test_glob_regex_translation():
    assert glob_regex("**/*.py").match("a/b/c.py") and glob_regex("**/*.py").match("c.py")
    assert not glob_regex("src/*.py").match("src/a/b.py")
    assert glob_regex("*.{js,ts}").match("web/x.ts")
    assert not glob_regex("?.py").match("ab.py")


def test_grep_answers_path_line_text_in_path_order(tree):
    result = GrepTool(Workspace(tree)).execute(pattern=r"def \w+\(")
    assert result == "src/app.py:3:def main():\nsrc/pkg/util.py:1:def helper():"


def test_grep_include_and_path(tree):
    grep = GrepTool(Workspace(tree))
    assert grep.execute(pattern="main", include="*.md") == "src/pkg/notes.md:1:main notes"
    assert grep.execute(pattern="return", path="src/pkg/util.py") == "src/pkg/util.py:2:    return 42"


def test_grep_errors_and_no_match(tree):
    grep = GrepTool(Workspace(tree))
    assert refused(grep, pattern="(unclosed").startswith("invalid regex '(unclosed'")
    assert grep.execute(pattern="zebra") == "No matches for 'zebra' in .."
    assert refused(grep, pattern="x", path="nope") == "path not found: nope"


def test_grep_caps_matches_and_cuts_lines(tmp_path):
    (tmp_path / "many.txt").write_text("hit\n" * 250 + "hit" + "z" * 1000 + "\n")
    result = GrepTool(Workspace(tmp_path)).execute(pattern="hit").split("\n")
    assert len(result) == 201
    assert result[-1] == "[51 more not shown; narrow the pattern]"
    assert result[0] == "many.txt:1:hit"


def test_grep_line_cut_at_300(tmp_path):
    (tmp_path / "long.txt").write_text("hit" + "z" * 1000 + "\n")
    assert GrepTool(Workspace(tmp_path)).execute(pattern="hit") == "long.txt:1:hit" + "z" * 297


def test_glob_caps_results(tmp_path):
    for i in range(205):
        (tmp_path / f"f{i}.txt").write_text("")
    result = GlobTool(Workspace(tmp_path)).execute(pattern="*.txt").split("\n")
    assert len(result) == 201 and result[-1] == "[5 more not shown; narrow the pattern]"
