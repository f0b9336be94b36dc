"""Linear time and bounded memory for every input (issue 22): the command analysis, edits and their diffs,
grep; and the small ones: binary matches, a NUL in a command, stray temp
files. Timings and memory figures are in benchmarks/run.py; these tests check behaviour."""
import os
import re
import subprocess
import time

import pytest
from hypothesis import given, settings, strategies as st

from scripted import ScriptedServer
from test_cli import env, workspace  # noqa: F401 (fixtures)
from test_scripting import call, nanocoder

from nanocoder.atomic import atomic_write
from nanocoder.tools.base import ToolError, Workspace
from nanocoder.tools.edit import EditFileTool
from nanocoder.tools.files import MAX_DIFF, MAX_EDIT, WriteFileTool
from nanocoder.tools.search import LIMIT, MAX_LINE, MAX_RESULTS, GrepTool
from nanocoder.tools.shell import ASK, FORBIDDEN, MAX_ANALYSED, READ_ONLY, classify, fork_bomb

# the pattern shell.py had: quadratic in a long word (19 s for 40,000 hex characters)
OLD_FORK_BOMB = re.compile(r"(?:function\s+([\w:.-]+)|([\w:.-]+)\s*\(\s*\))"
                           r"\s*\{(?:[^}]*[;|&])?\s*(?:\1|\2)\s*[&|]")


# --- the command analysis -------------------------------------------------------------------

def test_a_command_over_the_cap_asks_and_says_why(tmp_path):
    command = "echo " + "a b " * (MAX_ANALYSED // 4)  # read-only, were it short
    assert classify(command[:1000], tmp_path) == (READ_ONLY, "")
    verdict, why = classify(command, tmp_path)
    assert verdict == ASK and "too long to analyse" in why and f"{MAX_ANALYSED:,}" in why


def test_just_under_the_cap_is_still_analysed(tmp_path):
    assert classify(":(){ :|:& };: " + "#" * (MAX_ANALYSED - 20), tmp_path)[0] == FORBIDDEN


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from([":", "a", "f", "()", "{", "}", "|", "&", ";", "\n", "function", ":()", "a()",
                                 "{:|:&", "$"]), max_size=20).map(" ".join))
def test_the_linear_fork_bomb_check_finds_all_the_old_pattern_found(command):
    assert fork_bomb(command) >= bool(OLD_FORK_BOMB.search(command))


def test_fork_bomb_spellings(tmp_path):
    for bomb in (":(){ :|:& };:", "bomb() { bomb | bomb & }; bomb", "function f { f & }; f",
                 "f(){\n  echo hi; f|f\n}"):
        assert classify(bomb, tmp_path)[0] == FORBIDDEN, bomb
    for harmless in ("f(){ echo; }; f & f", "echo 'a(){' b &", "x(){ y; }; { x | x; }"):
        assert classify(harmless, tmp_path)[0] != FORBIDDEN, harmless


# --- grep -------------------------------------------------------------------------------------

def test_grep_says_a_binary_file_matches(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\0\0\1 the needle is here\n\0more")
    (tmp_path / "other.bin").write_bytes(b"\0nothing to see\n")
    (tmp_path / "text.txt").write_text("a needle in text\n")
    tool = GrepTool(Workspace(tmp_path))
    assert tool.execute(pattern="needle").split("\n") == ["blob.bin: binary file matches",
                                                          "text.txt:1:a needle in text"]
    assert tool.execute(pattern="needle", path="blob.bin") == "blob.bin: binary file matches"
    assert tool.execute(pattern="absent", path="blob.bin").startswith("No matches")


def test_grep_of_a_file_with_more_matching_lines_than_it_shows(tmp_path):
    (tmp_path / "a.log").write_text("hit\n" * (LIMIT * 20) + "x" * 100_000 + "hit\n")
    (tmp_path / "b.log").write_text("hit\n")
    answer = GrepTool(Workspace(tmp_path)).execute(pattern="hit").split("\n")
    assert answer[0] == "a.log:1:hit" and answer[MAX_RESULTS - 1] == f"a.log:{MAX_RESULTS}:hit"
    assert answer[-1] == f"[{LIMIT - MAX_RESULTS}+ more not shown; narrow the pattern]"


def test_a_matching_line_of_1_mb_is_cut_and_the_lines_after_it_are_numbered(tmp_path):
    """Checked by what reached the answer; the memory figure is in benchmarks/run.py."""
    (tmp_path / "long.txt").write_text("hit" + "y" * 1_000_000 + "\n" + "hit\n" * 10)
    answer = GrepTool(Workspace(tmp_path)).execute(pattern="hit").split("\n")
    assert answer[0] == "long.txt:1:hit" + "y" * (MAX_LINE - 3) and answer[1:] == [
        f"long.txt:{n}:hit" for n in range(2, 12)]


# --- a NUL in a command; stray temp files ------------------------------------------------------------

def test_a_nul_in_a_bash_command_is_a_clear_error_and_nothing_runs(env, workspace):
    with ScriptedServer([{"tool_calls": [call("bash", command="touch made; echo a\0b")]}, "ok"]) as s:
        run = nanocoder(s, "-p", "go", "-y", env=env, cwd=workspace)
    assert run.returncode == 0, run.stderr
    result = [m["content"] for m in s.requests[1]["messages"] if m["role"] == "tool"][0]
    assert "NUL byte" in result and "embedded null byte" not in result
    assert not (workspace / "made").exists()


def test_a_write_sweeps_the_temp_files_a_killed_writer_left_there(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # its id names no process now (unless reused at once: then only the age rule applies)
    old = time.time() - 3600
    stray = tmp_path / f".nanocoder-a.txt.{gone.pid}-0123abcd.tmp"   # a killed writer's, just now
    stale = tmp_path / ".nanocoder-a.txt.89abcdef.tmp"                # the older naming, an hour old
    live = tmp_path / f".nanocoder-a.txt.{os.getpid()}-456789ab.tmp"  # a live writer's, in use
    users = [tmp_path / ".nanocoder-notes.tmp", tmp_path / f".nanocoder-a.txt.{gone.pid}-xyz.tmp",
             tmp_path / ".nanocoder-d.0123abcd.tmp"]                  # the user's: wrong names, a folder
    for path in (stray, stale, live, *users[:2]):
        path.write_text("x")
    users[2].mkdir()
    for path in (stale, *users):
        os.utime(path, (old, old))
    atomic_write(tmp_path / "a.txt", b"new")
    assert (tmp_path / "a.txt").read_bytes() == b"new"
    assert not stray.exists() and not stale.exists()
    assert live.exists() and all(path.exists() for path in users)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(p.name for p in (tmp_path / "a.txt", live, *users))


# --- edits and diffs --------------------------------------------------------------------------------

def test_edits_refuse_a_file_over_the_size_they_change(tmp_path):
    big = tmp_path / "big.log"
    big.write_bytes(b"needle\n" + b"x" * MAX_EDIT)
    workspace = Workspace(tmp_path)
    for tool, args in ((EditFileTool, dict(old_string="needle", new_string="pin")),
                       (WriteFileTool, dict(content="short"))):
        with pytest.raises(ToolError, match=r"over the 10 MB that edit_file and write_file change; use bash"):
            tool(workspace).execute(file_path="big.log", **args)
    assert big.stat().st_size == MAX_EDIT + 7


def test_the_diff_of_an_edit_in_a_long_line_is_cut_to_its_head_and_tail(tmp_path):
    (tmp_path / "one.min.js").write_text("var a=1;" + "x" * 5_000_000 + "\n")
    result = EditFileTool(Workspace(tmp_path)).execute(file_path="one.min.js", old_string="var a=1;",
                                                      new_string="var a=2;")
    assert len(str(result)) < MAX_DIFF + 200 and len(result.diff) < MAX_DIFF + 200
    assert "-var a=1;xxx" in str(result) and "characters of the diff cut" in str(result)
    assert (tmp_path / "one.min.js").read_text().startswith("var a=2;")
