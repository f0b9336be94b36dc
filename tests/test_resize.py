"""Issue 21 item 7: a terminal made narrower mid-stream keeps no stale copy of the live tail. The installed
command in a pty, read through pyte. pyte crops lines on a resize where VTE, kitty, iTerm2, xterm.js, tmux
and the like reflow them, so the test reflows the screen itself at the moment of the resize, as those do:
the cells a row was written to (rich pads each line it draws to the full width) wrap at the new width,
erased cells do not. Then it feeds that screen what nanocoder writes after. A terminal that does not
reflow (xterm) is not what this shows."""
import os
import signal
from contextlib import suppress

import pexpect
import pyte

from test_screen import Terminal, model  # noqa: F401 (model: a fixture)

CODE = "".join(f"LINE{n:02} = '{'x' * 70}'\n" for n in range(6))
# a finished paragraph, then a live one glued to a code block whose fence is never closed
ANSWER = f"Intro paragraph.\n\nShort line.\n```python\n{CODE}"


def reflow(t, columns):
    """t's screen, up to the cursor, redrawn as a reflowing terminal does at `columns` wide."""
    def drawn(row):  # a row showing anything was written to its last cell; a blank one was erased
        shows = any(row[x].data != " " or row[x].bg != "default" for x in row)
        return "".join(row[x].data for x in range(max(row) + 1 if shows else 0))
    rows = [*t.screen.history.top, *(t.screen.buffer[y] for y in range(t.screen.cursor.y + 1))]
    t.screen, t.columns = pyte.HistoryScreen(columns, t.rows, history=5000), columns
    t.stream = pyte.Stream(t.screen)
    t.stream.feed("\r\n".join(drawn(row) for row in rows))


def test_a_narrower_terminal_mid_stream_keeps_one_copy_of_the_live_code_block(tmp_path, model):  # noqa: F811
    events = 1 + -(-len(ANSWER) // 8)  # the role, then the content in chunks of 8: then silence
    url = model({"content": ANSWER, "stall_after": events, "stall": 60})
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    t = Terminal(url, tmp_path / "home", tmp_path / "work", columns=100)
    try:
        t.expect("›")
        t.child.sendline("show code")
        for _ in range(3):  # the whole tail drawn, and drawn again
            t.expect("LINE05")
        # stopped, nanocoder draws nothing: every frame before the resize is read and drawn at 100 columns,
        # every frame after it comes once it runs again (Live redraws 12 times a second)
        os.kill(t.child.pid, signal.SIGSTOP)
        with suppress(pexpect.TIMEOUT):
            while True:
                t.child.read_nonblocking(65536, timeout=0.5)
        reflow(t, 45)
        t.child.setwinsize(t.rows, 45)  # and SIGWINCH, received once it runs again
        os.kill(t.child.pid, signal.SIGCONT)
        for _ in range(4):  # frames drawn at the new width
            t.expect("LINE05")
        text = t.text()
        assert [text.count(f"LINE{n:02}") for n in range(6)] == [1] * 6, text
        assert text.count("Intro paragraph.") == 1 and text.count("Short line.") == 1, text
    finally:
        t.child.close(force=True)
