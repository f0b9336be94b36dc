"""The terminal view: draws the agent's events (streamed markdown, tool calls and their results,
diffs, notices) and asks the user for approval. With cli.py and repl.py, the only code that draws.
It decides what to show from the events' fields, never from a tool's name or result text.
"""
import threading

from . import events as ev


class View:
    def __init__(self, console, interactive=True, stream_text=True):
        self.console, self.interactive, self.stream_text = console, interactive, stream_text
        self.lock = threading.RLock()  # tool events arrive from pool threads
        self.md = MarkdownStream(console)
        self.thinking = False

    def __call__(self, event: ev.Event) -> None:
        with self.lock:
            draw = getattr(self, f"_{type(event).__name__}", None)
            if draw:
                draw(event)

    def _Text(self, e):
        if self.stream_text and not e.depth:  # a sub-agent's text stays its own
            self._end_thinking()
            self.md.feed(e.text)

    def _Reasoning(self, e):
        if self.stream_text and not e.depth:
            self.thinking = True
            self.console.print(e.text, style="dim italic", end="", markup=False)

    def _ToolStarted(self, e):
        self.end()
        self.console.print(f"{'  ' * e.depth}[cyan]> {e.name}[/]({format_args(e.args)})")

    def _ToolFinished(self, e):
        pad = "  " * e.depth + "  "
        if e.is_error:
            self.console.print(f"{pad}[red]{escape(e.result.splitlines()[0][:300] if e.result else '')}[/]")
        elif e.diff and not e.depth:
            self.diff(e.diff)
        else:
            lines = e.result.strip().splitlines()
            more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
            self.console.print(f"{pad}[dim]⎿ {escape(lines[0][:100]) if lines else '(no output)'}{more}[/]")

    def _Notice(self, e):
        self.notice(f"sub-agent: {e.message}" if e.depth else e.message)

    def _Retry(self, e):
        shown = e.discarded and self.stream_text
        self.notice(e.message + ("; the text shown above is discarded" if shown else ""))

    def _TurnEnded(self, e):
        self.end()

    def notice(self, message):
        with self.lock:
            self.end()
            self.console.print(f"[yellow]{escape(message)}[/]")

    def diff(self, text):
        from rich.syntax import Syntax
        self.console.print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))

    def _end_thinking(self):
        if self.thinking:
            self.thinking = False
            self.console.print()

    def end(self):
        with self.lock:
            self._end_thinking()
            self.md.end()

    def approve(self, name, args, why="", preview=""):
        """The agent's approve(): True, False, "always", or the reason the user typed after "n"."""
        with self.lock:
            self.end()
            if not self.interactive:
                self.console.print(f"[yellow]not run: {name} needs approval{f' ({escape(why)})' if why else ''}; "
                                   f"re-run with --yes to allow it (a protected file needs a yes in the REPL)[/]")
                return False
            self.console.print(f"[bold]Allow[/] [cyan]{name}[/]({format_args(args, 300)})?")
            if why:
                self.console.print(f"[yellow]  {escape(why)}[/]")
            if preview:
                self.diff(preview)
            try:
                answer = self.console.input("[bold]y[/]es / [bold]n[/]o (a reason may follow) / "
                                            "[bold]a[/]lways: ").strip()
            except EOFError:  # Ctrl+D at the question is a no, not a traceback that loses the turn
                self.console.print()
                answer = "n"
        word, _, reason = answer.partition(" ")
        if word.lower() in ("a", "always"):
            return "always"
        if word.lower() in ("y", "yes"):
            return True
        return reason.strip() if word.lower() in ("n", "no") and reason.strip() else False


class MarkdownStream:
    """Streams markdown: finished blocks are drawn once and left alone; only the unfinished tail
    is redrawn, so a long answer costs time in proportion to its length, not its square."""

    def __init__(self, console):
        self.console, self.tail, self.live = console, "", None
        self.scanned, self.fenced = 0, False  # how far the tail's lines were read; inside ``` ?

    def feed(self, chunk):
        self.tail += chunk
        if "\n" in chunk and (cut := self._finished()):
            done, self.tail, self.scanned = self.tail[:cut], self.tail[cut:], self.scanned - cut
            self._show(done)
        if self.tail.strip() and self.console.is_terminal and self.live is None:  # a pipe gets whole blocks
            from rich.live import Live
            self.live = Live(self, console=self.console, refresh_per_second=12, vertical_overflow="visible")
            self.live.start()

    def __rich_console__(self, console, options):
        # Live draws the tail as it is at each refresh: no markdown parse per chunk.
        from rich.markdown import Markdown
        yield Markdown(self.tail)

    def _finished(self) -> int:
        """Where the last finished block ends: after a blank line outside any code fence. Reads
        only complete lines not read before, so a long code block is not re-scanned per chunk."""
        cut, end = 0, self.tail.rfind("\n") + 1
        for line in self.tail[self.scanned:end].splitlines(keepends=True):
            self.scanned += len(line)
            if line.lstrip().startswith(("```", "~~~")):
                self.fenced = not self.fenced
            elif not line.strip() and not self.fenced:
                cut = self.scanned
        return cut

    def end(self):
        if self.tail.strip() or self.live:
            self._show(self.tail)
        self.tail, self.scanned, self.fenced = "", 0, False

    def _show(self, text):
        from rich.markdown import Markdown
        if self.live is None:
            return self.console.print(Markdown(text))
        self.live.update(Markdown(text), refresh=True)  # the block stays on screen as last drawn
        self.live.stop()
        self.live = None


def format_args(args: dict, width: int = 60) -> str:
    texts = {key: repr(value) for key, value in args.items()}
    return ", ".join(f"{key}={escape(t if len(t) <= width else t[:width] + '…')}" for key, t in texts.items())


def escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)
