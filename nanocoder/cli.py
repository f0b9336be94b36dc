"""The terminal: flags, the REPL, one-shot mode and the offline demo.

The only module that draws. It renders what the agent reports through Callbacks; rich and
prompt_toolkit are imported only when something is drawn, so --version and --help stay instant.
"""
import argparse
import sys
import threading
from pathlib import Path

from . import __version__
from .config import Config, ConfigError
from .llm import LLMError
from .permissions import MODES
from .session import Session, SessionError, home, latest, list_sessions, private_dir, sessions_dir

HELP = """Commands:
  /model <name>   switch model (no name: show it)
  /mode <mode>    permissions: ask (before edits and commands), edits (edits in this folder
                  run), yes (all but forbidden commands run); no mode: show it
  /compact        compress the conversation now
  /tokens         tokens used and the current context size
  /save           save the session now (it is also saved after every turn)
  /sessions       list saved sessions (resume one with nanocoder -r ID)
  /reset          start a new conversation
  /help           this help
  quit            leave (or Ctrl+D, or Ctrl+C twice); Ctrl+C stops a running turn"""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="nanocoder", description="A minimal AI coding agent for the terminal.")
    p.add_argument("-m", "--model", help="model name (env NANOCODER_MODEL)")
    p.add_argument("--base-url", help="OpenAI-compatible API base URL (env OPENAI_BASE_URL)")
    p.add_argument("--api-key", help="API key (env OPENAI_API_KEY)")
    p.add_argument("-p", "--prompt", help="run one task, print the answer and exit")
    p.add_argument("-r", "--resume", metavar="ID", help="resume a saved session")
    p.add_argument("-c", "--continue", dest="cont", action="store_true",
                   help="resume the most recent session of this folder")
    p.add_argument("-y", "--yes", action="store_true", help="run tools without asking (--permission-mode yes)")
    p.add_argument("--permission-mode", choices=MODES, help="ask before edits and commands (default), "
                   "let edits inside the folder run (edits), or run everything that is not forbidden (yes)")
    p.add_argument("--demo", action="store_true", help="a short scripted session, offline, no key needed")
    p.add_argument("--version", action="version", version=f"nanocoder {__version__}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.demo:
            return demo()
        config = Config.load(args.model, args.api_key, args.base_url)
        if not config.api_key:
            raise ConfigError("no API key: set OPENAI_API_KEY or pass --api-key "
                              "(try `nanocoder --demo` for an offline tour)")
        session = Session.load(args.resume) if args.resume else None
        if args.cont:
            session = latest(Path.cwd().resolve())
        if session and not args.model:  # a resumed session keeps its model unless -m says otherwise
            config.model = session.model
        mode = "yes" if args.yes else args.permission_mode or "ask"
        if args.prompt is not None:
            return one_shot(config, args.prompt, mode, session)
        return repl(config, mode, session)
    except KeyboardInterrupt:  # Ctrl+C between two prompts, or before the first: a quiet exit
        print(file=sys.stderr)
        return 130
    except (ConfigError, LLMError, SessionError) as e:
        print(f"nanocoder: {e}", file=sys.stderr)
        return 1


def make_agent(config, callbacks, session, mode):
    from .agent import Agent
    from .llm import LLM
    from .permissions import Permissions
    llm = LLM(config.model, config.api_key, config.base_url, max_tokens=config.max_tokens,
              temperature=config.temperature, timeout=config.timeout or 600.0)
    agent = Agent(llm, callbacks=callbacks, max_context=config.max_context, permissions=Permissions(mode))
    if session:  # saved mid-turn, or by an older version: made valid before it is sent
        from .history import repair
        agent.messages = repair(session.messages)
    return agent, session or Session(model=llm.model, cwd=str(agent.workspace.cwd))


def save(agent, session, config, view):
    """Save the session; a full disk or read-only home is a warning, never the end of the work."""
    session.messages, session.model = agent.messages, agent.llm.model
    try:
        return session.save(secret=config.api_key)
    except OSError as e:
        view.notice(f"could not save the session: {e.strerror or e}")
        return None


def one_shot(config, prompt, mode, session) -> int:
    from rich.console import Console
    view = View(Console(stderr=True, highlight=False), interactive=False, stream_text=False)
    agent, session = make_agent(config, view, session, mode)
    try:
        answer = agent.chat(prompt)
    except KeyboardInterrupt:
        print("nanocoder: interrupted", file=sys.stderr)
        return 130
    finally:
        save(agent, session, config, view)
    print(answer)
    return 0


def repl(config, mode, session) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings
    from rich.console import Console
    console = Console(highlight=False)
    view = View(console, interactive=True)
    agent, session = make_agent(config, view, session, mode)
    keys = KeyBindings()

    @keys.add("c-c")
    def _(event):  # Ctrl+C on a typed line clears it, as in a shell; on an empty line it counts to quit
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt)
    class PrivateHistory(FileHistory):
        def store_string(self, string):  # a key pasted at the prompt never reaches the disk
            super().store_string(string.replace(config.api_key, "[redacted]") if config.api_key else string)
    try:
        history = private_dir(home()) / "history"
        history.touch(mode=0o600)
        history.chmod(0o600)
        prompt = PromptSession(history=PrivateHistory(str(history)), key_bindings=keys)
    except OSError:  # an unwritable home: history lasts for this run only
        prompt = PromptSession(key_bindings=keys)
    console.print(f"[bold]nanocoder[/] {__version__} · {agent.llm.model} · {agent.workspace.cwd} · "
                  f"permissions: {mode}\n"
                  f"[dim]/help for commands · Ctrl+C stops a turn · Ctrl+D quits[/]")
    if len(agent.messages) > 1:
        console.print(f"[dim]resumed session {session.id} ({len(agent.messages)} messages)[/]")
    interrupted = False  # Ctrl+C at an empty prompt twice in a row quits
    while True:
        try:
            line = prompt.prompt("› ").strip()
        except KeyboardInterrupt:
            if interrupted:
                break
            interrupted = True
            console.print("[dim]Ctrl+C again to quit[/]")
            continue
        except EOFError:
            break
        interrupted = False
        if line in ("quit", "exit", "/quit", "/exit"):
            break
        if line.startswith("/"):
            session = command(line, agent, session, config, view)
        elif line:
            run_turn(agent, line, view, console)
            save(agent, session, config, view)
    if (sessions_dir() / f"{session.id}.json").exists():  # no turn yet, or no save: nothing to resume
        console.print(f"[dim]session {session.id} saved · resume with: nanocoder -r {session.id}[/]")
    return 0


def run_turn(agent, line, view, console):
    try:
        agent.chat(line)
    except KeyboardInterrupt:
        view.notice("interrupted")
    except LLMError as e:
        view.end()
        console.print(f"[red]error:[/] {e}")
    view.end()


def command(line, agent, session, config, view):
    from rich.table import Table
    from .context import estimate
    console = view.console
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    if name == "/help":
        console.print(HELP)
    elif name == "/model":
        if arg:
            agent.llm.model = arg
        console.print(f"model: {agent.llm.model}")
    elif name == "/mode":
        if arg in MODES:
            agent.permissions.mode = arg
        elif arg:
            console.print(f"unknown mode {arg!r}; choose one of {', '.join(MODES)}")
        console.print(f"permissions: {agent.permissions.mode}")
    elif name == "/compact":
        try:
            console.print(agent.compact() or "nothing to compact")
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
    elif name == "/tokens":
        u = agent.usage
        console.print(f"prompt tokens: {u.prompt_tokens:,} · completion tokens: {u.completion_tokens:,} · "
                      f"context now: ~{estimate(agent.messages):,} of {agent.context.window:,}")
    elif name == "/save":
        if path := save(agent, session, config, view):
            console.print(f"saved to {path}")
    elif name == "/sessions":
        table = Table("id", "date", "first prompt", "messages", "size")
        for row in list_sessions():
            table.add_row(row["id"], row["date"], row["prompt"], str(row["messages"]), f"{row['bytes']:,} B")
        console.print(table if table.rows else "no saved sessions yet")
    elif name == "/reset":
        agent.reset()
        session = Session(model=agent.llm.model, cwd=str(agent.workspace.cwd))
        console.print("new conversation")
    else:
        console.print(f"unknown command {name}; /help lists them")
    return session


class View:
    """Draws the agent's events (the agent.Callbacks protocol): streamed markdown, tool calls,
    diffs, and asks for approval. Not a subclass, so --version need not import the agent."""

    def __init__(self, console, interactive=True, stream_text=True):
        self.console, self.interactive, self.stream_text = console, interactive, stream_text
        self.lock = threading.RLock()  # tool events arrive from pool threads
        self.md = MarkdownStream(console)
        self.thinking = False

    def text(self, chunk):
        if self.stream_text:
            self._end_thinking()
            self.md.feed(chunk)

    def reasoning(self, chunk):
        if self.stream_text:
            self.thinking = True
            self.console.print(chunk, style="dim italic", end="", markup=False)

    def _end_thinking(self):
        if self.thinking:
            self.thinking = False
            self.console.print()

    def end(self):
        with self.lock:
            self._end_thinking()
            self.md.end()

    def tool_start(self, name, args, depth=0):
        with self.lock:
            self.end()
            self.console.print(f"{'  ' * depth}[cyan]> {name}[/]({_format_args(args)})", markup=True)

    def tool_end(self, name, args, result, depth=0):
        from rich.syntax import Syntax
        pad = "  " * depth + "  "
        with self.lock:
            if result.startswith("Error"):
                self.console.print(f"{pad}[red]{_escape(result.splitlines()[0][:200])}[/]")
            elif name == "edit_file" and depth == 0:
                self.console.print(Syntax(result, "diff", theme="ansi_dark", background_color="default"))
            elif name == "read_file" and not result.startswith("Binary"):
                self.console.print(f"{pad}[dim]⎿ {len(result.splitlines())} lines[/]")
            else:
                lines = result.strip().splitlines()
                self.console.print(f"{pad}[dim]⎿ {_escape(lines[0][:100]) if lines else ''}"
                                   f"{f' (+{len(lines) - 1} lines)' if len(lines) > 1 else ''}[/]")

    def notice(self, message):
        with self.lock:
            self.end()
            self.console.print(f"[yellow]{_escape(message)}[/]")

    retry = notice  # "retrying in N s" is a line of its own, like any notice

    def approve(self, name, args, why="", preview=""):
        with self.lock:
            self.end()
            if not self.interactive:
                self.console.print(f"[yellow]not run: {name} needs approval{f' ({_escape(why)})' if why else ''}; "
                                   f"re-run with --yes to allow it (a protected file needs a yes in the REPL)[/]")
                return False
            self.console.print(f"[bold]Allow[/] [cyan]{name}[/]({_format_args(args, 300)})?")
            if why:
                self.console.print(f"[yellow]  {_escape(why)}[/]")
            if preview:
                from rich.syntax import Syntax
                self.console.print(Syntax(preview, "diff", theme="ansi_dark", background_color="default"))
            try:
                answer = self.console.input("[bold]y[/]es / [bold]n[/]o / [bold]a[/]lways: ").strip().lower()
            except EOFError:  # Ctrl+D at the question is a no, not a traceback that loses the turn
                self.console.print()
                answer = "n"
        return "always" if answer in ("a", "always") else answer in ("y", "yes")


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


def _format_args(args: dict, width: int = 60) -> str:
    texts = {key: repr(value) for key, value in args.items()}
    return ", ".join(f"{key}={_escape(t if len(t) <= width else t[:width] + '…')}" for key, t in texts.items())


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)


def demo() -> int:
    """A scripted session against the project's own local server: no key, no network."""
    import os
    import tempfile
    from rich.console import Console
    from . import demo as script
    from .agent import Agent
    from .llm import LLM
    from .permissions import Permissions
    from .scripted import ScriptedServer
    console = Console(highlight=False)
    folder = Path(tempfile.mkdtemp(prefix="nanocoder-demo-"))
    script.make_project(folder)
    console.print(f"[bold]nanocoder demo[/] · a scripted model, real tools, in {folder}\n"
                  f"[dim]No key and no network: the model's replies come from a local scripted server.[/]\n")
    console.print(f"[bold]›[/] {script.PROMPT}")
    view = View(console)
    # The scripted server is on 127.0.0.1: an HTTP(S)_PROXY setting must not send the demo to a proxy.
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = f"{no_proxy},127.0.0.1" if no_proxy else "127.0.0.1"
    with ScriptedServer(script.replies(), chunk_size=4) as server:
        agent = Agent(LLM("scripted-demo", api_key="demo", base_url=server.url), callbacks=view, cwd=folder,
                      permissions=Permissions("yes"))
        agent.chat(script.PROMPT)
    view.end()
    console.print(f"\n[dim]Try it for real: OPENAI_API_KEY=... nanocoder -m MODEL (see README)[/]")
    return 0
