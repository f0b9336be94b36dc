"""Issue 21's screen items, as a person sees them: the installed command in a pty, its bytes through pyte
with scrollback, at 100 and at 60 columns."""
import pytest

from test_screen import PROMPT, Terminal, model  # noqa: F401, F811 (model: a fixture)

SPINNER = "Ctrl+C to stop"


@pytest.fixture(params=[100, 60])
def term(request, tmp_path, model):
    started = []

    def start(*replies, args=(), env=(), wait=True):
        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        t = Terminal(model(*replies), home, work, *args, columns=request.param, env=env)
        started.append(t)
        if wait:
            t.expect(PROMPT)
        return t
    yield start
    for t in started:
        t.child.close(force=True)


def spinners(t) -> list[str]:
    return [line for line in t.lines() if SPINNER in line]


def test_typing_while_the_model_works_leaves_no_spinner_and_comes_back_in_the_prompt(term):
    t = term({"content": "Finally.", "stall_after": 1, "stall": 3}, "Got it.")
    t.child.sendline("hello?")
    t.expect(SPINNER)
    t.child.send("next question")  # type-ahead, in two bursts, the second ending in Enter
    t.expect(SPINNER)
    t.child.send(" please\r")
    t.expect("Finally.")
    t.expect(PROMPT)
    t.expect("next question please")  # back in the prompt, not sent: Enter sends it now
    assert spinners(t) == [] and "next question" not in t.text().split("Finally.")[0]
    t.turn("", "Got it.")
    assert spinners(t) == [] and "› next question please" in t.lines()


def test_ctrl_c_and_esc_stop_a_command_and_leave_no_spinner_nor_lose_what_is_typed_after(term):
    sleep = {"tool_calls": [{"name": "bash", "arguments": {"command": "sleep 20"}}]}
    t = term(sleep, sleep, args=("--permission-mode", "yes"))
    for key, line in (("\x03", "run it"), ("\x1b", "again")):
        t.child.sendline(line)
        t.expect("running bash")
        t.child.send(key)
        t.child.send("hello")  # Esc then typing: no Alt+h that eats the h
        t.expect("interrupted")
        t.expect(PROMPT)
        t.expect("hello")
        t.child.sendcontrol("u")  # Ctrl+U: the line is cleared for the next round
    text = t.text()
    assert spinners(t) == [] and text.count("interrupted\n") == 2 and "Warning" not in text, text


def colour(t, text) -> str:
    """The colour of the first character of the last line that holds text."""
    rows = [*t.screen.history.top, *(t.screen.buffer[y] for y in range(t.rows))]
    [y] = [n for n, line in enumerate(t.lines()) if text in line][-1:]
    return rows[y][t.lines()[y].index(text)].fg


def test_a_failed_or_killed_command_is_red_with_its_exit_code_and_a_good_one_is_dim(term):
    bash = lambda command: {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]}
    t = term(bash("echo fine"), bash("echo broken; exit 3"), bash("kill -TERM $$"), "Done.",
             args=("--permission-mode", "yes", "--sandbox", "off"))
    t.turn("run them", "Done.")
    assert "⎿ fine" in t.text() and colour(t, "⎿ fine") == "default"  # dim: no colour of its own
    assert "⎿ broken · exit code 3" in t.text() and colour(t, "⎿ broken") == "red"
    assert "⎿ (no output) · exit code -15 SIGTERM" in t.text() and colour(t, "⎿ (no output)") == "red"


def test_the_first_prompt_given_on_the_command_line_is_shown_as_typed(term):
    t = term("Hello back.", args=("say hello to the screen",), wait=False)
    t.expect("Hello back.")
    t.expect(PROMPT)
    lines = t.lines()
    asked = lines.index("› say hello to the screen")
    assert lines.index("Hello back.") > asked and "/help for commands" in " ".join(lines[:asked])


def test_a_long_line_in_the_approval_diff_and_in_diff_is_wrapped_not_cropped(term):
    long = "value = '" + "x" * 400 + " THE_END'"
    t = term({"tool_calls": [{"name": "write_file", "arguments": {"file_path": "a.py", "content": long + "\n"}}]},
             "Written.")
    t.child.sendline("write it")
    t.expect("lways:")
    assert "THE_END" in t.text()  # on screen before the answer
    t.child.sendline("y")
    t.expect("Written.")
    t.expect(PROMPT)
    t.turn("/diff", "THE_END")
    assert t.text().count("THE_END") == 2 and all(len(line) <= t.columns for line in t.lines())


def test_help_wraps_under_its_own_column(term):
    t = term()
    t.turn("/help", "tells the model why")
    lines = t.lines()
    shown = lines[lines.index("› /help") + 1:lines.index("› /help") + 40]
    shown = shown[:next(n for n, line in enumerate(shown) if line.startswith(PROMPT))]
    left = [line for line in shown if not line.startswith(" ")]
    assert left[0] == "Commands:" and left[1].startswith("Input:") and len(left) == 2, shown
    assert all(line.startswith("Input:") or not line.startswith(" " * 3) or line.startswith(" " * 18)
               for line in shown), shown


def test_markdown_blocks_have_one_blank_line_between_them(term):
    md = ("# Title\n\nA paragraph.\n\n## Section\n\n- item one\n- item two\n\nText.\n\n```python\nx = 1\n```\n\n"
          "After the code.\n\n> a quote\n\n1. first\n2. second\n\nEnd.")
    t = term({"content": md, "delay": 0.01})
    t.turn("write markdown", "End.")
    lines = t.lines()
    answer = lines[lines.index("› write markdown"):lines.index("End.")]
    assert "\n\n\n" not in "\n".join(answer) and "item two" in "\n".join(answer), answer


def test_the_status_bar_keeps_the_context_share_at_any_width(term):
    t = term(args=("-m", "claude-sonnet-4-5-20250929"), env={"PROMPT_TOOLKIT_NO_CPR": "0"})
    t.expect(" claude-sonnet-4-5-20250929 · ")  # the status bar, drawn once the height is known
    t.child.send("x")
    t.expect("x")  # drawn after it
    [status] = [line for line in t.lines() if line.startswith(" claude-sonnet-4-5-20250929 ·")]
    assert "context 0%" in status, status


def test_a_full_screen_program_is_refused_with_a_reason_and_a_slow_command_shows_a_sign_of_life(term):
    t = term()
    t.turn("!vim notes.txt", "vim needs a terminal")
    t.child.sendline("!sleep 20 # [/x]")
    t.expect(SPINNER)  # a sign of life, and the way out
    t.child.send("\x1b")
    t.expect("[interrupted]")
    t.expect(PROMPT)
    assert spinners(t) == [] and not (t.work / "notes.txt").exists()


def bells(t) -> int:
    return "".join(t.raw).count("\x07")


def test_a_long_turn_ends_with_a_bell_and_so_does_an_approval_question(term):
    t = term({"content": "Slow.", "stall_after": 1, "stall": 2}, "Quick.",
             {"tool_calls": [{"name": "write_file", "arguments": {"file_path": "a.txt", "content": "x"}}]}, "Done.",
             env={"NANOCODER_BELL": "1"})  # a turn of 1 s or more rings: this one stalls 2 s
    t.turn("slow one", "Slow.")
    assert bells(t) == 1
    t.turn("quick one", "Quick.")  # well under the 10 s a bell waits for by default
    assert bells(t) == 1
    t.child.sendline("write")
    t.expect("lways:")
    assert bells(t) == 2
    t.child.sendline("y")
    t.expect("Done.")


def test_the_bell_is_off_with_nanocoder_bell_0(term):
    t = term({"tool_calls": [{"name": "write_file", "arguments": {"file_path": "a.txt", "content": "x"}}]}, "Done.",
             env={"NANOCODER_BELL": "0"})
    t.child.sendline("write")
    t.expect("lways:")
    t.child.sendline("y")
    t.turn("", "Done.")
    assert bells(t) == 0
