"""Checkpoints that never destroy (issue 21, items 1 and 2): /undo asks before it overwrites what the user
changed since the agent wrote it; what commands changed is undone too; undo, diff and rewind survive a
resume; /rewind goes back to an earlier message in both the conversation and the files. Through the
installed command, in a pty, the screen read through pyte (tests/test_screen.py)."""
import json
import subprocess

import pytest

from nanocoder.checkpoints import Checkpoints
from nanocoder.tools.base import Workspace
from nanocoder.tools.bash import BashTool
from test_sandbox import PROBE, scratch  # noqa: F401 - scratch: a fixture
from test_screen import PROMPT, Terminal, model  # noqa: F401 - model: a fixture


@pytest.fixture
def term(tmp_path, model):  # noqa: F811
    def start(*replies, args=("--permission-mode", "yes")):
        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        t = Terminal(model(*replies), home, work, *args)
        t.expect(PROMPT)
        return t
    return start


def write(path, content):
    return {"tool_calls": [{"name": "write_file", "arguments": {"file_path": path, "content": content}}]}


def messages(t):
    [path] = (t.home / ".nanocoder" / "sessions").glob("*.json")
    return json.loads(path.read_text())["messages"]


def test_undo_shows_the_users_own_edit_and_keeps_it_when_told_no(term):
    t = term(write("notes.txt", "model line\n"), "Written.")
    (t.work / "notes.txt").write_text("old\n")
    t.turn("write the notes", "Written.")
    with open(t.work / "notes.txt", "a") as f:
        f.write("my own line\n")
    t.child.sendline("/undo")
    t.expect("+my own line")  # the diff of what the user did since
    t.expect("Go back anyway? (y/n)")
    t.child.sendline("n")
    t.expect("nothing changed")
    t.expect(PROMPT)
    assert (t.work / "notes.txt").read_text() == "model line\nmy own line\n"
    t.child.sendline("/undo")
    t.expect("Go back anyway? (y/n)")
    t.child.sendline("y")
    t.expect("restored notes.txt")
    t.expect(PROMPT)
    assert (t.work / "notes.txt").read_text() == "old\n"


def test_undo_puts_back_what_a_command_changed_and_keeps_file_modes(term):
    t = term({"tool_calls": [{"name": "bash", "arguments": {
        "command": "echo x > new.txt && echo changed > kept.sh && mkdir -p d && echo y > d/deep.txt"}}]},
        "Ran it.")
    (t.work / "kept.sh").write_text("#!/bin/sh\n")
    (t.work / "kept.sh").chmod(0o700)
    t.turn("run it", "Ran it.")
    assert (t.work / "new.txt").exists() and (t.work / "kept.sh").read_text() == "changed\n"
    t.turn("/undo", "removed new.txt")
    assert not (t.work / "new.txt").exists() and not (t.work / "d").exists()
    kept = t.work / "kept.sh"
    assert kept.read_text() == "#!/bin/sh\n" and kept.stat().st_mode & 0o777 == 0o700  # not git's 0755
    t.turn("/undo", "nothing to undo")


def test_diff_and_undo_survive_quitting_and_continuing(term, model):  # noqa: F811
    t = term(write("a.txt", "from the model\n"), "Done.")
    t.turn("write a", "Done.")
    t.child.sendline("quit")
    t.child.expect("resume with")
    t.child.wait()
    again = Terminal(model("unused"), t.home, t.work, "--permission-mode", "yes", "-c")
    again.expect(PROMPT)
    again.turn("/diff", "+from the model")
    again.turn("/undo", "removed a.txt")
    assert not (t.work / "a.txt").exists()
    note = messages(again)[-1]["content"]
    assert note.startswith("[I undid your last file changes") and "a.txt" in note


def test_rewind_to_the_first_message_takes_back_files_and_conversation(term):
    t = term(write("one.txt", "1\n"), "First done.", write("two.txt", "2\n"), "Second done.", "Fresh start.")
    (t.work / "kept.txt").write_text("there before\n")
    t.turn("make one", "First done.")
    t.turn("make two", "Second done.")
    t.turn("/rewind", "1. make one", "2. make two")
    t.turn("/rewind 1", "removed")
    assert sorted(p.name for p in t.work.iterdir()) == ["kept.txt"]
    assert [m["role"] for m in messages(t)] == ["system"]
    t.turn("again", "Fresh start.")
    assert [m["content"] for m in messages(t) if m["role"] == "user"] == ["again"]


def test_a_sandboxed_command_can_neither_read_nor_change_the_store(scratch):  # noqa: F811
    if PROBE.support():
        pytest.skip(PROBE.support())
    home, work = scratch
    workspace = Workspace(work)
    checkpoints = Checkpoints(workspace)
    checkpoints.begin({})
    store = checkpoints.store
    assert store.is_relative_to(home / ".nanocoder") and (store / "HEAD").is_file()
    head = (store / "HEAD").read_bytes()
    tamper = f"cat '{store}/HEAD'; echo junk > '{store}/HEAD'; rm -rf '{store}'"
    out = BashTool(workspace).execute(command=tamper)
    assert "ref:" not in str(out) and (store / "HEAD").read_bytes() == head
    (work / "f.txt").write_text("changed\n")
    checkpoints.end()
    back = checkpoints.back()
    checkpoints.restore(back)
    assert not checkpoints.off and (work / "f.txt").read_text() == "hello\n"
    subprocess.run(["git", "-C", str(work), "diff", "--exit-code"], check=True)  # the user's .git untouched


def test_large_and_ignored_files_are_left_out_and_a_home_workspace_is_not_snapshotted(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir(parents=True)
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (work / ".gitignore").write_text("build/\n")
    (work / "build").mkdir()
    (work / "build" / "out.o").write_text("object\n")
    checkpoints = Checkpoints(Workspace(work))
    assert checkpoints.begin({}) == ""
    (work / "big.bin").write_bytes(b"x" * (11 << 20))  # over MAX_FILE: left out, so never removed
    (work / "build" / "out.o").write_text("rebuilt\n")
    (work / "small.txt").write_text("s\n")
    checkpoints.end()
    back = checkpoints.back()
    assert back.files == {"small.txt": "removed"}
    checkpoints.restore(back)
    assert (work / "big.bin").exists() and (work / "build" / "out.o").read_text() == "rebuilt\n"
    assert not (work / "small.txt").exists() and not checkpoints.off
    at_home = Checkpoints(Workspace(home))
    notes = [at_home.begin({}), at_home.begin({})]
    assert notes[0].endswith("holds ~/.nanocoder: /undo, /diff and /rewind cover nothing here")
    assert notes[1] == ""  # said once
    assert at_home.steps == [] and not at_home.store.exists()
