"""The REPL's screen as a person sees it: the pty's bytes go through a terminal emulator (pyte),
and the assertions read its screen and scrollback. The scripted model runs in its own process,
so pexpect forks no threads."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pyte
import pytest

NANOCODER = Path(sys.executable).parent / "nanocoder"
COLUMNS, LINES = 100, 24
PROMPT = "›"


class Terminal:
    """nanocoder in a pty whose output feeds a pyte screen with scrollback, at any width."""

    def __init__(self, url, home, work, *args, columns=COLUMNS, env=()):
        self.columns, self.rows = columns, LINES
        self.screen = pyte.HistoryScreen(columns, LINES, history=5000)
        self.stream = pyte.Stream(self.screen)
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
        environ.update({"HOME": str(home), "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_PROXY": "127.0.0.1",
                        **dict(env)})
        self.child = pexpect.spawn(str(NANOCODER), ["--base-url", url, "--api-key", "k", "-m", "scripted", *args],
                                   env=environ, cwd=str(work), encoding="utf-8", timeout=20,
                                   dimensions=(LINES, columns))
        self.child.logfile_read = self  # every byte read goes to the emulator too
        self.work, self.home, self.raw = work, home, []

    def write(self, data):
        self.raw.append(data)
        self.stream.feed(data)
        if "\x1b[6n" in data:  # a cursor position query (only when PROMPT_TOOLKIT_NO_CPR=0): answered
            self.child.send(f"\x1b[{self.screen.cursor.y + 1};{self.screen.cursor.x + 1}R")

    def flush(self):
        pass

    def lines(self) -> list[str]:
        """Scrollback then screen, as text, trailing blanks dropped."""
        rows = [*self.screen.history.top, *(self.screen.buffer[y] for y in range(self.rows))]
        return [("".join(row[x].data for x in range(self.columns))).rstrip() for row in rows]

    def text(self) -> str:
        return "\n".join(self.lines())

    def expect(self, text):
        self.child.expect_exact(text)

    def turn(self, line, *expected):
        self.child.sendline(line)
        for text in expected:
            self.child.expect_exact(text)
        self.child.expect_exact(PROMPT)


@pytest.fixture
def model(tmp_path):
    """Start the scripted server in its own process with these replies; returns its URL."""
    procs = []

    def start(*replies):
        path = tmp_path / f"replies{len(procs)}.json"
        path.write_text(json.dumps(list(replies)))
        proc = subprocess.Popen([sys.executable, Path(__file__).with_name("scripted.py"), path], stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        return proc.stdout.readline().split()[2]
    yield start
    for proc in procs:
        proc.terminate()
        proc.wait()


@pytest.fixture
def term(tmp_path, model):
    def start(*replies):
        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        t = Terminal(model(*replies), home, work)
        t.expect(PROMPT)
        return t
    yield start


def saved_messages(t):
    [path] = (t.home / ".nanocoder" / "sessions").glob("*.json")
    return json.loads(path.read_text())["messages"]


def test_a_code_block_taller_than_the_window_appears_once(term):
    code = "\n".join(f"line_{n:03d} = {n}" for n in range(80))
    t = term({"content": f"Here it is:\n\n```python\n{code}\n```\n\nDone.", "delay": 0.005})
    t.turn("show me code", "Done.")
    lines = t.lines()
    for n in range(80):
        assert sum(f"line_{n:03d} = {n}" in line for line in lines) == 1, f"line_{n:03d}"


def test_ctrl_c_mid_stream_leaves_each_line_once_and_says_interrupted(term):
    words = " ".join(f"w{n}" for n in range(400))
    t = term({"content": words, "delay": 0.05})
    t.child.sendline("talk")
    t.expect("w40 ")
    t.child.sendcontrol("c")
    t.expect("interrupted")
    t.expect(PROMPT)
    lines = t.lines()
    start = next(i for i, line in enumerate(lines) if line.startswith("w0 "))
    end = lines.index("interrupted")
    shown = " ".join(" ".join(lines[start:end]).split())
    assert len(shown) > 100 and words.startswith(shown), shown  # each word once, in order, then the notice


def test_a_refused_command_is_shown_with_the_reason(term):
    t = term({"tool_calls": [{"name": "bash", "arguments": {"command": "rm -rf ~"}}]}, "I will not do that.")
    t.turn("clean my home", "I will not do that.")
    text = "\n".join(t.lines())
    assert text.index("> bash(command='rm -rf ~')") < text.index("Error: refused") < text.index("I will not do that.")


def test_a_silent_model_shows_a_sign_of_life(term):
    t = term({"content": "Finally.", "stall_after": 1, "stall": 3})
    t.child.sendline("hello?")
    t.expect("Ctrl+C to stop")  # on screen while nothing has come yet
    assert "waiting for the model" in "\n".join(t.lines()) and "Finally." not in "\n".join(t.lines())
    t.expect("Finally.")


def test_undo_puts_back_an_edited_file_byte_for_byte_and_removes_a_created_one(term):
    t = term({"tool_calls": [
        {"name": "edit_file", "arguments": {"file_path": "a.txt", "old_string": "two", "new_string": "TWO"}},
        {"name": "write_file", "arguments": {"file_path": "new.txt", "content": "fresh\n"}}]}, "Changed.")
    original = b"one\r\ntwo\r\n\xe9t\xe9\r\n"  # CRLF and latin-1: every byte must come back
    (t.work / "a.txt").write_bytes(original)
    t.child.sendline("change things")
    # each answer once its own question is drawn: a redraw of the first menu also says "always:", and a key
    # typed between two questions is type-ahead for the next prompt, not an answer
    for tool in ("edit_file", "write_file"):
        t.expect(tool)
        t.expect("lways:")
        t.child.sendline("y")
    t.expect("Changed.")
    t.expect(PROMPT)
    assert (t.work / "a.txt").read_bytes() != original and (t.work / "new.txt").exists()
    t.turn("/diff", "+TWO")
    t.turn("/undo", "restored")
    assert (t.work / "a.txt").read_bytes() == original and not (t.work / "new.txt").exists()
    t.turn("/undo", "nothing to undo")


def test_multi_line_input_arrives_as_one_message(term):
    t = term("Got both lines.")
    t.child.send("first line")
    t.child.send("\x1b\r")  # Esc+Enter: a new line, not a send
    t.child.send("second line \\")
    t.child.send("\r")  # a trailing backslash: another new line
    t.child.send("third line\r")
    t.expect("Got both lines.")
    t.expect(PROMPT)
    assert saved_messages(t)[1]["content"] == "first line\nsecond line \nthird line"


def test_tab_completes_a_command(term):
    t = term()
    t.child.send("/com")
    t.child.send("\t")
    t.expect("pact")
    t.child.send("\r")
    t.expect("nothing old enough to summarise")


def test_the_sandbox_is_shown_at_start_and_switched_with_a_command(term):
    t = term()
    start = "\n".join(t.lines())
    assert "sandbox workspace-write" in start or "no sandbox" in start  # never silent about it
    t.turn("/sandbox off", "commands run with your full rights")
    t.turn("/sandbox read-only", "read-only")


def test_a_shell_command_leaves_a_clean_prompt_and_joins_the_conversation(term):
    t = term("I see the file.")
    (t.work / "seen.txt").write_text("x\n")
    t.turn("!ls", "seen.txt", "exit code: 0")
    t.turn("/help", "/undo")  # the screen goes on; no spinner left running over the prompt
    assert "waiting for the model" not in "\n".join(t.lines())
    t.turn("what do you see?", "I see the file.")
    said = [m["content"] for m in saved_messages(t) if m["role"] == "user"]
    assert said[0].startswith("I ran `ls` myself") and "seen.txt" in said[0]


def test_undo_tells_the_model_what_it_undid(term):
    t = term({"tool_calls": [{"name": "write_file", "arguments": {"file_path": "new.txt", "content": "x\n"}}]},
             "Written.", "Understood.")
    t.child.sendline("write it")
    t.expect("lways:")
    t.child.sendline("y")
    t.expect("Written.")
    t.expect(PROMPT)
    t.turn("/undo", "removed")
    t.turn("ok?", "Understood.")
    note = [m["content"] for m in saved_messages(t) if m["role"] == "user"][-2]
    assert note.startswith("[I undid your last file changes") and "new.txt" in note
