"""The approval question as a menu (issue 21 items 3 and 4), read through a terminal emulator at 100 and 60
columns: arrows move a highlight that Enter picks, "always" states a scope that is sensible (a bash program
and its script in this folder, whatever a redirection into the workspace names; a file tool's folder), and a
refused parallel call's result is on screen while the next question waits."""
import pytest

from test_screen import PROMPT, Terminal, model, saved_messages  # noqa: F401 - fixture

DOWN, UP = "\x1b[B", "\x1b[A"


class Narrow(Terminal):
    """test_screen's terminal, read until a line starts with something."""

    def until(self, start):
        """Read what nanocoder draws until a line starts with this."""
        while not any(line.startswith(start) for line in self.lines()):
            self.child.read_nonblocking(65536, timeout=20)


@pytest.fixture(params=[100, 60])
def term(request, tmp_path, model):  # noqa: F811
    def start(*replies):
        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        (work / "app.py").write_text("print('made')\n")
        t = Narrow(model(*replies), home, work, columns=request.param)
        t.expect(PROMPT)
        return t
    yield start


def bash(*commands):
    return {"tool_calls": [{"name": "bash", "arguments": {"command": c}} for c in commands]}


def flat(t) -> str:
    """The scrollback and screen without blanks: a line wrapped at 60 columns reads whole."""
    return "".join("".join(t.lines()).split())


def menus(t) -> int:
    return sum("don't ask again" in line for line in t.lines())


def test_arrows_and_enter_pick_always(term):
    t = term(bash("python3 app.py > out1.txt"), "Ran it.", bash("python3 app.py > out1.txt"), "Again.")
    t.child.sendline("run it")
    t.expect("lways:")
    t.child.send(DOWN)
    t.until("❯ 1. yes")
    t.child.send(DOWN)
    t.until("❯ 2. yes, and don't ask again")
    lines = t.lines()
    assert "^[[B" not in "\n".join(lines) and menus(t) == 1  # one menu, redrawn in place, no escape codes
    assert max(map(len, lines)) <= t.columns
    t.child.send("\r")
    t.turn("", "Ran it.")
    t.turn("again", "Again.")
    assert menus(t) == 1 and (t.work / "out1.txt").read_text() == "made\n"  # the second run was not asked


def test_always_on_a_redirected_script_covers_it_with_another_output(term):
    t = term(bash("python3 app.py > out1.txt"), "Ran it.", bash("python3 app.py > out2.txt"), "Ran it again.",
             bash("python3 other.py > out3.txt"), "Asked.")
    t.child.sendline("run it")
    t.expect("lways:")
    assert f"don'taskagainthissessionforbash`python3app.py…`in{t.work}" in flat(t)
    t.child.sendline("a")
    t.expect("Ran it.")
    t.expect(PROMPT)
    t.turn("and again", "Ran it again.")
    assert (t.work / "out2.txt").read_text() == "made\n" and menus(t) == 1  # not asked
    t.child.sendline("another")
    t.expect("lways:")  # another script is another program: asked
    assert menus(t) == 2


def test_always_on_a_file_edit_covers_its_folder(term):
    def write(name):
        return {"tool_calls": [{"name": "write_file", "arguments": {"file_path": name, "content": "x\n"}}]}
    t = term(write("src/a.txt"), "One.", write("src/b.txt"), "Two.", write("c.txt"), "Three.")
    (t.work / "src").mkdir()
    t.child.sendline("write a")
    t.expect("lways:")
    assert f"don'taskagainthissessionforwrite_fileonfilesdirectlyin{t.work}/src" in flat(t)
    t.child.sendline("2")
    t.expect("One.")
    t.expect(PROMPT)
    t.turn("write b", "Two.")
    assert (t.work / "src" / "b.txt").exists() and menus(t) == 1
    t.child.sendline("write c")
    t.expect("lways:")  # another folder: asked
    assert menus(t) == 2


def test_a_refused_parallel_call_shows_its_result_before_the_next_question(term):
    t = term(bash("rm -rf ~", "python3 app.py > out.txt"), "Done.")
    t.child.sendline("clean and run")
    t.expect("lways:")
    text = "\n".join(t.lines())
    assert text.index("> bash(command='rm -rf ~')") < text.index("Error: refused") \
        < text.index("Allow bash(command='python3 app.py > out.txt')")
    t.child.sendline("y")
    t.expect("Done.")


def test_no_highlighted_by_an_arrow_takes_what_to_do_instead(term):
    t = term(bash("python3 app.py > out.txt"), "Using make.")
    t.child.sendline("run it")
    t.expect("lways:")
    t.child.send(UP)  # the first ↑ highlights 3
    t.until("❯ 3. no")
    t.child.sendline("use the Makefile")
    t.expect("Using make.")
    t.expect(PROMPT)
    assert not (t.work / "out.txt").exists()
    [result] = [m for m in saved_messages(t) if m["role"] == "tool"]
    assert result["content"].endswith("declined to run this call, saying: use the Makefile")
