"""The REPL: read a line, run a turn or a /command, repeat; the session is saved as it goes."""
from . import __version__
from .cli import Hangup, make_agent
from .llm import LLMError
from .permissions import MODES
from .session import home, list_sessions, private_dir, sessions_dir

HELP = """Commands:
  /model <name>   switch model (no name: show it)
  /mode <mode>    permissions: ask (before edits and commands), edits (edits in this folder
                  run), yes (all but forbidden commands run); no mode: show it
  /compact        compress the conversation now
  /tokens         tokens used and the current context size
  /save           save the session now (it is also saved after every round)
  /sessions       list saved sessions, this folder's first (resume one with nanocoder -r ID)
  /reset          start a new conversation
  /help           this help
  quit            leave (or Ctrl+D, or Ctrl+C twice); Ctrl+C stops a running turn"""


def repl(config, mode, session, first=None) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings
    from rich.console import Console
    from .view import View
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
    try:
        history = private_dir(home()) / "history"
        history.touch(mode=0o600)
        history.chmod(0o600)
        prompt = PromptSession(history=FileHistory(str(history)), key_bindings=keys)
    except OSError:  # an unwritable home: history lasts for this run only
        prompt = PromptSession(key_bindings=keys)
    console.print(f"[bold]nanocoder[/] {__version__} · {agent.llm.model} · {agent.workspace.cwd} · "
                  f"permissions: {mode}\n"
                  f"[dim]/help for commands · Ctrl+C stops a turn · Ctrl+D quits[/]")
    if len(agent.messages) > 1:
        console.print(f"[dim]resumed session {session.id} ({len(agent.messages)} messages)[/]")
    interrupted = False  # Ctrl+C at an empty prompt twice in a row quits
    try:
        while True:
            try:
                line = first.strip() if first else prompt.prompt("› ").strip()
                first = None
            except Hangup:
                break
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
                command(line, agent, session, view)
            elif line:
                run_turn(agent, line, view)
    except Hangup:  # the turn was stopped and saved; nobody is left to read a goodbye
        return 0
    if (sessions_dir() / f"{session.id}.json").exists():  # no turn yet, or no save: nothing to resume
        console.print(f"[dim]resume with: nanocoder -r {session.id}[/]", soft_wrap=True)
    return 0


def run_turn(agent, line, view):
    try:
        agent.chat(line)
    except Hangup:
        view.end()
        raise
    except KeyboardInterrupt:
        view.notice("interrupted")
    except LLMError as e:
        view.end()
        view.console.print(f"[red]error:[/] {e}")
    view.end()


def command(line, agent, session, view):
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
        session.messages, session.model = agent.messages, agent.llm.model
        try:
            console.print(f"saved to {session.save()}")
        except OSError as e:
            view.notice(f"could not save the session: {e.strerror or e}")
    elif name == "/sessions":
        table = Table("id", "date", "folder", "first prompt", "messages")
        for row in list_sessions(agent.workspace.root):
            table.add_row(row["id"], row["date"], row["cwd"], row["prompt"], str(row["messages"]))
        console.print(table if table.rows else "no saved sessions yet")
    elif name == "/reset":
        agent.reset()
        session.restart()
        console.print("new conversation")
    else:
        console.print(f"unknown command {name}; /help lists them")
