"""The terminal view: draws the agent's events and asks for approval. It decides from the events' fields,
never from a tool's name or its result's text."""
import re
import sys
import textwrap
import threading
import time

# rich at the top: only the terminal modules import this one, when something is drawn
from rich.control import Control
from rich.live import Live
from rich.markup import escape
from rich.segment import ControlType, Segment
from rich.syntax import Syntax
from rich.text import Text

from . import events as ev
from .visible import visible

FENCES = ("```", "~~~")
# a list, a quote, a table, a code block: rich draws a blank line above it (or pads it), in place of the one
# Stream puts before a block
OWN_GAP = re.compile(r"\s*([-*+]\s|\d+[.)]\s|>|\||```|~~~)")
FENCE_PART = 40  # lines of a long code fence printed at a time: the live tail never holds more


class View:
    def __init__(self, console, interactive=True, stream_text=True, yes=False):
        self.console, self.interactive, self.stream_text = console, interactive, stream_text
        self.yes = yes  # -p with --yes: what still needs approval, --yes does not cover
        self.lock = threading.RLock()  # tool events arrive from pool threads
        self.md = Stream(console, markdown=True)
        self.thought = Stream(console, markdown=False)
        self.status = None  # rich's spinner, while nothing else moves (interactive only)
        # the agent's or one sub-agent's (by the call that spawned it) calls not yet shown with their result
        self.calls: dict[str | None, list] = {}
        self.shown, self.previewed = set(), set()  # call ids whose line is up; whose diff the user saw
        # how each event is drawn: a test checks every event class is here (None: not drawn)
        self.draws = {ev.TurnStarted: self._turn_started, ev.Text: self._text, ev.Reasoning: self._reasoning,
                      ev.ToolStarted: self._tool_started, ev.ToolFinished: self._tool_finished,
                      ev.RoundEnded: self._round_ended, ev.Notice: self._notice, ev.Retry: self._retry,
                      ev.Todos: self._todos, ev.Usage: None, ev.TurnEnded: self._turn_ended,
                      ev.ApprovalRequested: None}  # asked in __call__, outside the lock
        self.asking = 0  # questions waiting for the user's answer

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.ApprovalRequested):  # waits for the user: not under the lock
            self.ask(event)
            return
        with self.lock:
            draw = self.draws.get(type(event))
            if draw:
                draw(event)

    def _turn_started(self, e):
        self.spin("waiting for the model")

    def _text(self, e):
        if self.stream_text and not e.depth:  # a sub-agent's text stays its own
            self.spin(None)
            self.thought.end()
            self.md.feed(e.text)

    def _reasoning(self, e):
        if self.stream_text and not e.depth:
            self.spin(None)
            self.thought.feed(e.text)

    def _tool_started(self, e):
        self.end()
        queue = self.calls.setdefault(e.parent_call_id, [])
        queue.append([e, None])
        if len(queue) == 1:
            self._call_line(e)
        self.spin(f"running {e.name}")

    def _tool_finished(self, e):
        queue = self.calls.get(e.parent_call_id, [])
        for item in queue:
            if item[0].call_id == e.call_id:
                item[1] = e
        while queue and queue[0][1]:  # results in call order, each under its call
            call, result = queue.pop(0)
            self._call_line(call)
            self._result(result)
            if queue:
                self._call_line(queue[0][0])

    def _call_line(self, e):
        if e.call_id not in self.shown:
            self.shown.add(e.call_id)
            self.console.print(f"{'  ' * e.depth}[cyan]> {escape(e.name)}[/]({format_args(e.args)})")

    def _result(self, e):
        pad = "  " * e.depth + "  "
        if e.is_error:
            self.console.print(f"{pad}[red]{escape(e.result.strip() or '(error)')[:500]}[/]")
        elif e.diff and not e.depth and e.call_id not in self.previewed:
            self.diff(e.diff)
        elif e.diff and not e.depth:
            self.console.print(f"{pad}[dim]⎿ done, as shown above[/]")
        else:
            lines = e.result.strip().splitlines()[:-1 if e.exit_code is not None else None]  # said below
            more = f" (+{len(lines) - 1} line{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
            failed = f" · exit code {e.exit_code} {e.signal}".rstrip() if e.exit_code else ""
            self.console.print(f"{pad}[{'red' if e.exit_code else 'dim'}]⎿ "
                               f"{escape(lines[0][:100]) if lines else '(no output)'}{more}{failed}[/]")

    def _todos(self, e):
        """The checklist, drawn again after each change: done struck through, the current one in bold."""
        marks = {"completed": ("☒", "dim strike"), "in_progress": ("☐", "bold")}
        for item in e.todos:
            box, style = marks.get(item["status"], ("☐", "default"))
            text = item["activeForm"] if item["status"] == "in_progress" else item["content"]
            self.console.print(f"{'  ' * e.depth}  {box} [{style}]{escape(visible(text))}[/]")

    def _round_ended(self, e):
        if not e.depth:
            self.spin("waiting for the model")

    def _notice(self, e):
        self.notice(f"sub-agent: {e.message}" if e.depth else e.message)

    def _retry(self, e):  # only a view that showed the text says it is thrown away
        self.notice(e.message + ("; the text shown above is discarded"
                                 if e.discarded and self.stream_text else ""))

    def _turn_ended(self, e):
        if not e.depth:
            self.calls.clear()
            self.end()

    def spin(self, label):
        """Show a sign of life with this label (None: stop), when nothing else is live."""
        live = self.md.live or self.thought.live
        if label is None or live or self.asking or not (self.interactive and self.console.is_terminal):
            self.status = self.status and self.status.stop()
        elif self.status is None:
            self.status = self.console.status(Elapsed(label))
            self.status.start()
        elif self.status.renderable.text.label != label:
            self.status.update(Elapsed(label))

    def notice(self, message):
        with self.lock:
            self.end()
            self.console.print(f"[yellow]{escape(message)}[/]")

    def diff(self, text):
        self.console.print(Syntax(visible(text), "diff", theme="ansi_dark", background_color="default",
                                  word_wrap=True))  # wrapped: what is approved is seen whole

    def end(self):
        """Finish what streams: the text drawn so far stays on screen once."""
        with self.lock:
            self.spin(None)
            self.thought.end()
            self.md.end()

    def ask(self, e: ev.ApprovalRequested) -> None:
        """Answer an approval request: -p says why it is not run; the REPL asks the user. The lock is held
        only while the question is drawn, so events of calls running meanwhile are drawn, not held up."""
        with self.lock:
            self.end()
            if not self.interactive:
                how = "--yes does not cover it" if self.yes else "re-run with --yes to allow it"
                why = f" ({e.why})" if e.why else ""
                self.notice(f"not run: {e.name} needs approval{why}; {how} (a protected file, or a write "
                            "where no command may write, needs a yes in the REPL)")
                e.answer(ev.Decision.deny())
                return
            self.asking += 1  # no spinner over the question
            self.console.print(f"[bold]Allow[/] [cyan]{escape(e.name)}[/]({format_args(e.args, 300)})?")
            if e.why:
                self.console.print(f"[yellow]  {escape(e.why)}[/]")
            if e.preview:
                self.diff(e.preview)
                self.previewed.add(e.call_id)
        menu = Menu(e.scope)
        try:
            if self.console.is_terminal and sys.stdin.isatty():
                answer = menu.ask()
            else:  # typed answers (piped input); one it does not know asks again
                self.console.print(escape(menu.text(self.console.width)))
                while (answer := decision(self.console.input(escape(menu.HINT)), e.scope)) is None:
                    pass
        except EOFError:  # Ctrl+D at the question is a no, not a traceback that loses the turn
            answer = ev.Decision.deny()
            self.console.print()
        except KeyboardInterrupt:  # the agent's cancel() denies the request
            self.console.print()
            raise
        finally:
            self.asking -= 1
        e.answer(answer)


class Menu:
    """The approval question, drawn as one: 1 yes, 2 always (within the scope it states), 3 no and what to do
    instead. Arrows move a highlight (none at first: a stray Enter picks nothing) that Enter picks; a typed
    answer is read as decision() reads it."""
    CHOICES = ("yes", "yes, and don't ask again this session for",
               "no, and tell the model what to do instead")
    HINT = "↑↓ and Enter, or type 1-3, y, n (and a reason), always: "

    def __init__(self, scope):
        self.scope, self.at, self.note = scope, None, ""  # at: the highlighted choice's index

    def text(self, width) -> str:  # wrapped here: prompt_toolkit cuts a long line of its message
        lines = [f"{'❯' if i == self.at else ' '} {i + 1}. {text}" for i, text in enumerate(self.CHOICES)]
        lines[1] += "".join(f"\n     {part}" for part in textwrap.wrap(visible(self.scope)[:300], width - 6))
        return "\n".join(lines)

    def ask(self) -> ev.Decision:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.key_binding import KeyBindings
        keys = KeyBindings()
        keys.add("down")(lambda event: self.move(1))
        keys.add("up")(lambda event: self.move(-1))

        @keys.add("enter")
        def _(event):
            typed = event.current_buffer.text.strip() or ("" if self.at is None else str(self.at + 1))
            answer = decision(typed, self.scope)
            if answer is None and self.at == 2 and typed:  # typed with "no" highlighted: what to do instead
                answer = ev.Decision.deny(typed)
            if answer is None:
                self.note = f"{visible(typed)[:40]!r} is not an answer\n"
                event.current_buffer.reset()
            else:
                event.app.exit(result=answer)
        return PromptSession(self.message, key_bindings=keys).prompt()

    def message(self):  # drawn afresh at each key: the highlight moves
        from prompt_toolkit.application import get_app
        text = f"{self.text(get_app().output.get_size().columns)}\n{self.note}{self.HINT}"
        lines = text.splitlines(keepends=True)
        return [("reverse" if line.startswith("❯") else "", line) for line in lines]

    def move(self, step):  # the first ↓ highlights 1, the first ↑ 3
        self.at = (0 if step > 0 else 2) if self.at is None else (self.at + step) % 3


def decision(answer: str, scope: str) -> ev.Decision | None:
    """A typed answer: y or 1, a or 2 (always, within scope), n or 3 (and a reason); else None."""
    word, _, reason = answer.strip().partition(" ")
    if word.lower() in ("y", "yes", "1"):
        return ev.Decision.once()
    if word.lower() in ("a", "always", "2"):
        return ev.Decision.always(scope)
    return ev.Decision.deny(reason.strip()) if word.lower() in ("n", "no", "3") else None


class Stream:
    """Streams markdown (or plain reasoning text): finished blocks are printed once, into the scrollback; only
    the unfinished tail is live, cropped to the window, so no block is drawn twice; cost grows linearly."""

    def __init__(self, console, markdown=True):
        self.console, self.markdown, self.tail, self.live, self.code = console, markdown, "", None, None
        self.after_code = False  # a code block brings its own blank line (rich pads it)
        self.end()  # the rest of the state, empty

    def render(self, text):
        from rich.markdown import Markdown  # here: -p draws no markdown, and markdown-it takes 35 ms to load
        if self.code is not None:
            return self._syntax(text, bottom=1)
        text = visible(text)  # before rich parses it: markdown keeps its styling, the text is only shown
        return Markdown(text) if self.markdown else Text(text, style="dim italic")

    def _syntax(self, code, top=0, bottom=0):
        # A part of a code block, as rich's markdown draws one (monokai, padded): padding above the
        # first part and below the last only.
        return Syntax(visible(code.removesuffix("\n")), self.code, theme="monokai", word_wrap=True,
                      padding=(top, 1, bottom, 1))

    def feed(self, chunk):
        self.tail += chunk
        if "\n" in chunk:
            self._commit()
        if self.tail.strip() and self.console.is_terminal and self.live is None:  # a pipe gets whole blocks
            self.drawn = []  # the cell widths of the lines this Live drew last: none yet
            self.live = Live(self, console=self.console, refresh_per_second=12, transient=True)
            self.live.start()

    def __rich_console__(self, console, options):
        # Live draws the tail as it is at each refresh: no markdown parse per chunk; its last lines that fit
        lines = console.render_lines(self.render(self.tail), options, pad=False)[-max(1, console.height - 4):]
        # A narrower terminal reflowed the lines drawn last, and Live moves up one row per line: the rows
        # each one gained are erased here, or they would stay above the new render.
        for _ in range(sum(max(0, width - 1) // options.max_width for width in self.drawn)):
            yield Control((ControlType.CURSOR_UP, 1), (ControlType.ERASE_IN_LINE, 2))
        if self.code is None and self._gap(self.tail):  # the blank line that will stand before the block
            yield Segment.line()
        for line in lines:
            yield from line
            yield Segment.line()
        self.drawn = [Segment.get_line_length(line) for line in lines]

    def _commit(self):
        """Print what is finished: each block that ends in a blank line outside a code fence, and the
        complete lines of a fence taller than the window. Reads only complete lines not read before."""
        cut, end = 0, self.tail.rfind("\n") + 1
        while self.scanned < end:
            start, self.scanned = self.scanned, self.tail.index("\n", self.scanned) + 1
            line = self.tail[start:self.scanned]
            if self.markdown and line.lstrip().startswith(FENCES):
                self.fenced, self.head, self.code_lines = not self.fenced, start, 0
                if self.code is not None:  # the end of a fence printed in parts: its last lines
                    last = self._syntax(self.tail[:start].rstrip(), bottom=1)
                    self.tail, end, self.scanned = self.tail[self.scanned:], end - self.scanned, 0
                    self.code, self.after_code = None, True
                    self._print(last)
            elif self.fenced:
                self.code_lines += 1
            elif not line.strip():
                cut = self.scanned
        if self.fenced and self.code_lines >= FENCE_PART:
            self._split_fence(end)
        elif cut:
            done, self.tail, self.scanned, self.head = self.tail[:cut], self.tail[cut:], self.scanned - cut, \
                self.head - cut
            self._show(done)

    def _split_fence(self, end):
        """Print the complete lines of an open fence; the first time, what stands before it too."""
        top = self.code is None
        if top:
            fence = self.tail[self.head:self.tail.index("\n", self.head) + 1]
            before, self.head = self.tail[:self.head], self.head + len(fence)
            self._show(before)
            self.code = fence.strip().lstrip("`~").strip().partition(" ")[0] or "text"
            self.after_code = not before.strip()  # a paragraph and its code block: a blank line between
        part = self._syntax(self.tail[self.head if top else 0:end], top=int(top))
        self.tail, self.scanned, self.head, self.code_lines = self.tail[end:], 0, 0, 0
        self._print(part, gap=top and not self.after_code)

    def end(self):
        if self.code is not None:  # the answer stopped inside a fence printed in parts
            self._print(self._syntax(self.tail.rstrip(), bottom=1))
            self.after_code = True
        elif self.tail.strip() or self.live:
            self._show(self.tail)
        # scanned: how far the tail's lines were read; fenced: inside ``` ?; head: where the open fence's line
        # starts in the tail; code_lines: its lines since; code: the language of an open fence already partly
        # printed (the tail is its code)
        self.tail, self.scanned, self.fenced, self.code, self.head, self.code_lines = "", 0, False, None, 0, 0

    def _show(self, text):
        # one blank line before each block: headings never glued, no piles after code
        self._print(self.render(text.strip("\n")) if text.strip() else None, gap=self._gap(text))
        if text.strip():
            self.after_code = self.markdown and text.rstrip().endswith(FENCES)

    def _print(self, renderable, gap=False):
        if self.live is not None:  # transient: the live tail is erased, then printed once for good
            self.live.stop()
            self.live = None
        if renderable is not None:
            if gap:
                self.console.print()
            self.console.print(renderable)

    def _gap(self, text) -> bool:
        return not (self.after_code or self.markdown and OWN_GAP.match(text))


class Elapsed:
    """A spinner's text, drawn afresh at each refresh: 'waiting for the model · 4 s · Ctrl+C to stop'."""

    def __init__(self, label):
        self.label, self.since = label, time.monotonic()

    def __rich__(self):
        return f"{self.label} · {time.monotonic() - self.since:.0f} s · Ctrl+C to stop"


def format_args(args: dict, width: int = 60) -> str:
    cut = lambda text: text if len(text) <= width else text[:width] + "…"
    return ", ".join(f"{key}={escape(cut(repr(value)))}" for key, value in args.items())
