"""The REPL: read a line (or several), run a turn, a /command or a !command, repeat; the session
is saved as it goes. Only imported when the REPL starts, so prompt_toolkit loads only then."""
import difflib
import os
import re
import select
import signal
import termios
import textwrap
import threading
import time
import tty
from contextlib import contextmanager

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings

from . import __version__
from .app import Hangup, make_agent
from .checkpoints import Checkpoints
from .config import ConfigError, check_model
from .llm import LLMError
from .permissions import MODES
from .sandbox import POLICIES as SANDBOX
from .session import home, private_dir, sessions_dir
from .tools.base import ToolError, printable
from .tools.bash import BashTool
from .tools.files import ReadFileTool
from .view import View, escape
from .visible import terminal, visible

HELP = """Commands:
  /model <name>   switch model (no name: show it and the models the provider offers)
  /mode <mode>    permissions: ask (before edits and commands), edits, yes, plan; no mode: show it
  /plan           plan mode: reading only, then a plan to carry out (Shift+Tab cycles ask, edits, plan)
  /sandbox <p>    what commands may write: read-only, workspace-write, off; no policy: show it
  /compact        compress the conversation now
  /tokens         tokens used (cached too) and the context size
  /diff           what changed in files since this session began (by the model, its commands, or you)
  /undo           put back the files the last turn changed (asks first if you changed them since)
  /rewind <n>     go back to before your nth message: files and conversation (no n: list them)
  /init           ask the model to write AGENTS.md for this project
  /memory         the memory files (AGENTS.md, CLAUDE.md) this session loaded
  /sessions       list saved sessions, this folder's first (resume one with nanocoder -r ID)
  /reset, /clear  start a new conversation
  quit            leave (or Ctrl+D, or Ctrl+C twice); Esc or Ctrl+C stops a running turn
Input: Esc+Enter (or a line ending in \\) for a new line · Tab completes /commands, models and @paths
  @path attaches a file · !command runs a shell command for the conversation
  "n <reason>" at a question tells the model why"""
COMMANDS = (*re.findall(r"(?m)(?:^  |, )(/\w+)", HELP), "/help", "quit")  # what Tab completes
INIT = ("Write AGENTS.md for this project: how to build, test and run it, its layout, its conventions, "
        "and what to watch out for. Read the project first; keep it short and specific.")
CYCLE = ("ask", "edits", "plan")  # Shift+Tab's round; yes only by name: no stray key press allows everything
FULL_SCREEN = {"vi", "vim", "nvim", "nano", "emacs", "less", "more", "man", "top", "htop", "ssh", "tmux"}
MENTION = re.compile(r"(?<!\S)@(\S+)")
KEY_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|O.)?")  # Esc, an arrow's, a function key's


def repl(config, mode, session, first=None, sandbox="workspace-write", unix_sockets=False) -> int:
    _quiet_half_built_loops()
    console = terminal(highlight=False)
    bell = os.environ.get("NANOCODER_BELL", "10")  # seconds a turn takes for its end to ring a bell; 0: never
    view, keys = View(console, interactive=True), Keys(console, int(bell) if bell.isdigit() else 10)
    asks = view.ask

    def ask(event):  # the question gets the keyboard back, and rings the bell
        keys.give_back()
        if keys.bell:
            console.bell()
        try:
            asks(event)
        finally:
            keys.take()
    view.ask = ask
    wired = make_agent(config, view, session, mode, sandbox, unix_sockets=unix_sockets)
    agent, session, saver = wired.agent, wired.session, wired.saver
    here = session.cwd == str(agent.workspace.root)  # the store is this folder's: not another's trees
    agent.checkpoints = Checkpoints(agent.workspace, session.checkpoints if here else [])
    prompt = PromptSession(history=_history(view), key_bindings=_keys(agent), completer=_Complete(agent),
                           complete_while_typing=False, bottom_toolbar=lambda: _status(agent))
    console.print(f"[bold]nanocoder[/] {__version__} · {view_text(agent.llm.model)} · "
                  f"{view_text(str(agent.workspace.cwd))} · "
                  f"permissions: {mode}\n[dim]{view_text(_sandbox(agent), 1000)}\n"
                  f"/help for commands · Ctrl+C stops a turn · Ctrl+D quits[/]")
    if len(agent.messages) > 1:
        _recap(agent, session, view)
    interrupted = False  # Ctrl+C at an empty prompt twice in a row quits
    try:
        while True:
            try:
                # the first prompt (nanocoder "..."), shown as if typed; or what was typed while a turn ran
                line = prompt.prompt("› ", default=first or keys.text(), accept_default=bool(first)).strip()
                first = None
            except KeyboardInterrupt as e:
                if isinstance(e, Hangup):
                    raise
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
                command(line, agent, session, view, saver, keys)
            elif line.startswith("!"):
                shell(line[1:].strip(), agent, view, saver, keys)
            elif line:
                run_turn(agent, attach(line, agent, view), view, keys)
    except Hangup as e:  # the turn was stopped and saved; nobody is left to read a goodbye
        return 128 + e.args[0]
    if (sessions_dir() / f"{session.id}.json").exists():  # no turn yet, or no save: nothing to resume
        console.print(f"[dim]resume with: nanocoder -r {session.id}[/]", soft_wrap=True)
    return 0


def run_turn(agent, line, view, keys):
    answer = ""
    try:
        with keys.taken():
            answer = agent.chat(line)
    except Hangup:
        view.end()
        raise
    except KeyboardInterrupt:
        view.notice("interrupted")
    except LLMError as e:
        view.end()
        view.console.print(f"[red]error:[/] {view_text(str(e), 2000)}")
    view.end()
    if answer.strip() and agent.permissions.mode == "plan":
        carry_out(agent, answer, view, keys)


def carry_out(agent, plan, view, keys):
    """After a turn in plan mode: offer to carry the plan out, in edits mode, the plan the next message."""
    if _yes(view, "[bold]Carry out this plan?[/] y switches to edits mode and starts; anything else keeps "
                  "planning: "):
        agent.permissions.mode = "edits"
        view.console.print("permissions: edits")
        run_turn(agent, f"Carry out this plan:\n\n{plan}", view, keys)


def _yes(view, question) -> bool:
    try:
        return view.console.input(question).strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt) as e:
        if isinstance(e, Hangup):
            raise
        view.console.print()
        return False


def go_back(name, arg, agent, view, saver):
    """/undo: the files as before the last turn that changed any; /rewind n: the files and the conversation as
    before your nth message. Either shows what changed since the agent's last turn and asks first."""
    console, checkpoints = view.console, agent.checkpoints
    marks = {step.mark for step in checkpoints.steps}  # on user messages a compaction has not dropped
    marked = [i for i, message in enumerate(agent.messages) if message.get("checkpoint") in marks]
    if name == "/rewind" and not (arg.isdigit() and 0 < int(arg) <= len(marked)):
        said = [str(agent.messages[i]["content"]).rpartition("</environment>")[2] for i in marked]
        lines = [f"{n}. {view_text(text, 80)}" for n, text in enumerate(said, 1)]
        console.print("\n".join([*lines, "/rewind <n> goes back to before message n"]) if lines else
                      checkpoints.off or "nothing to rewind to")
        return
    message = marked[int(arg) - 1] if name == "/rewind" else 0
    back = checkpoints.back(agent.messages[message]["checkpoint"] if message else "")
    if back is None:
        console.print(checkpoints.off or "nothing to undo")
        return
    if back.edited:
        console.print("[yellow]Changed since the agent's last turn (going back undoes this too):[/]")
        view.diff(back.edited)
    if back.edited and not _yes(view, "Go back anyway? (y/n) "):
        console.print("nothing changed")
        return
    checkpoints.restore(back)
    if checkpoints.off:  # git failed: the files may be partly back
        console.print(checkpoints.off)
        return
    done = [printable(f"{how} {file}") for file, how in back.files.items()]
    console.print("\n".join(done) or "no file changed", markup=False)
    if name == "/rewind":
        del agent.messages[message:]
    elif done:  # the model must not go on believing its changes are there
        agent.messages.append({"role": "user",
                               "content": f"[I undid your last file changes: {'; '.join(done)}]"})
    saver.save(agent.messages)


def attach(line: str, agent, view) -> str:
    """The line, with each @path that names a file attached (bounded as read_file bounds it)."""
    files, reader = [], ReadFileTool(agent.workspace)  # the built-in's, whatever tools the model has
    for path in dict.fromkeys(MENTION.findall(line)):
        try:
            files.append(f'<file path="{path}">\n{reader.execute(file_path=path)}\n</file>')
        except ToolError as e:
            view.notice(f"@{path} not attached: {e}")
    return "\n\n".join([line, *files])


def shell(cmd: str, agent, view, saver, keys):
    """!cmd: the user's own command, run as bash runs the model's (the same workspace and sandbox); its
    output joins the conversation and is saved at once."""
    stopped, bash, program = None, BashTool(agent.workspace), os.path.basename((cmd.split() or [""])[0])
    if program in FULL_SCREEN:  # it would wait for a terminal it does not get
        view.notice(f"not run: {program} needs a terminal, which a !command does not get; use another one")
        return
    try:
        view.spin(f"running !{view_text(cmd, 30)}")
        with keys.taken():
            output = str(bash.execute(command=cmd))
    except ToolError as e:
        output = f"Error: {e}"
    except KeyboardInterrupt as e:
        bash.cancel()
        output, stopped = "[interrupted]", e
    view.end()
    view.console.print(output, markup=False, highlight=False)
    agent.messages.append({"role": "user", "content": f"I ran `{cmd}` myself. Its output:\n{output}"})
    saver.save(agent.messages)
    if isinstance(stopped, Hangup):  # SIGTERM or SIGHUP: saved; now the REPL ends
        raise stopped


def command(line, agent, session, view, saver, keys):
    from .output import sessions_listing
    console = view.console
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    if name == "/help":
        for text in HELP.splitlines():  # wrapped under its own column, even at 60 columns
            indent = " " * (18 if text[:18].endswith("  ") else 2)  # a command's line: under its description
            console.print(textwrap.fill(text, console.width - 1, subsequent_indent=indent), markup=False)
    elif name == "/model":
        console.print(switch_model(agent.llm, arg), markup=False)
    elif name == "/mode":
        if arg in MODES:
            agent.permissions.mode = arg
        elif arg:
            console.print(f"unknown mode {arg!r}; choose one of {', '.join(MODES)}")
        console.print(f"permissions: {agent.permissions.mode}")
    elif name == "/plan":
        agent.permissions.mode = "plan"
        console.print("permissions: plan (reading only; Shift+Tab or /mode leaves it)")
    elif name == "/memory":
        lines = [f"memory: {path} ({len(text):,} characters)" for path, text in agent.project.memory.items()]
        lines += [f"note: {note}" for note in agent.project.notes]
        console.print("\n".join(lines or ["no memory files found"])
                      + "\n(read at the session's start; /clear reads them again)", markup=False)
    elif name == "/sandbox":
        if arg in SANDBOX:
            agent.workspace.sandbox_policy = arg
        elif arg:
            console.print(f"unknown sandbox {arg!r}; choose one of {', '.join(SANDBOX)}")
        console.print(_sandbox(agent), markup=False)
    elif name == "/compact":
        view.spin("compacting the conversation")
        try:
            note = agent.compact()
            view.end()
            console.print(note or "nothing to compact")
        except KeyboardInterrupt as e:
            view.notice("interrupted")
            if isinstance(e, Hangup):
                raise
    elif name == "/tokens":
        u = agent.usage
        console.print(f"input tokens: {u.prompt_tokens:,} ({u.cached_tokens:,} cached) · output tokens: "
                      f"{u.completion_tokens:,} · context now: ~{agent.context.tokens(agent.messages):,} of "
                      f"{agent.context.window:,}")
    elif name == "/diff":
        changes = agent.checkpoints.diff()
        view.diff(changes) if changes else console.print(agent.checkpoints.off or "no file changed")
    elif name in ("/undo", "/rewind"):
        go_back(name, arg, agent, view, saver)
    elif name == "/init":
        run_turn(agent, INIT, view, keys)
    elif name == "/sessions":
        console.print(sessions_listing(agent.workspace.root), markup=False)
    elif name in ("/reset", "/clear"):
        agent.reset()
        agent.checkpoints.steps.clear()
        session.restart()
        console.print("new conversation")
    else:
        console.print(f"unknown command {name}; /help lists them")


def switch_model(llm, name: str) -> str:
    """/model NAME: a name the provider lists (asked at the first /model or Tab, never at start-up), or any
    name, with a note, if it lists none; no name: the list."""
    known = llm.models()
    if not name:
        return f"model: {llm.model}\n" + (f"the provider offers: {', '.join(known)}" if known
                                          else f"{llm.unlisted}; any name is taken")
    try:
        check_model(name, "/model")
        if known and name not in known:
            close = ", ".join(difflib.get_close_matches(name, known, n=3)) or "none"
            raise ConfigError(f"the provider does not list {name!r} (close: {close}; /model lists all)")
    except ConfigError as e:
        return f"{e}; the model stays {llm.model}"
    llm.model = name
    return f"model: {name}" + ("" if known else f" (not checked: {llm.unlisted})")


def _recap(agent, session, view):
    """On resume: which session, a warning if it was another folder's, and its last exchange."""
    view.console.print(f"[dim]resumed session {session.id} ({len(agent.messages)} messages)[/]")
    if session.cwd != str(agent.workspace.cwd):
        view.notice(f"this session was started in {session.cwd}; you are in {agent.workspace.cwd}")
    said = [m for m in agent.messages
            if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
            and m["content"].strip()]
    for m in said[-2:]:
        who = "›" if m["role"] == "user" else "nanocoder:"
        view.console.print(f"[dim]{who} {view_text(m['content'])}[/]")


def view_text(text: str, limit: int = 300) -> str:
    text = " ".join(printable(text).split())
    return escape(text if len(text) <= limit else text[:limit] + "…")


def _quiet_half_built_loops():
    """A Ctrl+C that lands while prompt_toolkit builds its event loop (between two prompts) leaves
    half a loop whose finaliser fails: the user pressed Ctrl+C; they need no traceback for it."""
    import asyncio
    import sys
    import warnings
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: None if isinstance(u.object, asyncio.AbstractEventLoop) or \
        getattr(u.object, "__qualname__", "") == "BaseEventLoop.__del__" else hook(u)


def _sandbox(agent) -> str:
    workspace = agent.workspace
    return workspace.sandbox.describe(workspace.sandbox_policy, workspace.root, workspace.unix_sockets)


def _status(agent) -> str:
    used = agent.context.tokens(agent.messages) * 100 // agent.context.window
    tokens = agent.usage.prompt_tokens + agent.usage.completion_tokens
    sandbox = "none" if agent.workspace.sandbox.support() else agent.workspace.policy()
    # what a narrow terminal crops goes last
    return visible(f" {agent.llm.model} · context {used}% · {tokens:,} tokens · "
                   f"permissions: {agent.permissions.mode} · sandbox: {sandbox}")


def _history(view):
    class History(FileHistory):
        def store_string(self, string):  # a full or read-only disk: one warning, not a traceback a line
            try:
                super().store_string(string)
            except OSError as e:
                view.notice(f"the prompt history cannot be saved ({e.strerror or e}); it lasts for this run")
                self.store_string = lambda string: None
    try:
        path = private_dir(home()) / "history"
        path.touch(mode=0o600)
        path.chmod(0o600)
        return History(str(path))
    except OSError:  # an unwritable home: history lasts for this run only
        return InMemoryHistory()


def _keys(agent):
    keys = KeyBindings()

    @keys.add("s-tab")
    def _(event):  # the next permission mode of CYCLE; the status line shows it
        mode = agent.permissions.mode
        agent.permissions.mode = CYCLE[(CYCLE.index(mode) + 1) % len(CYCLE)] if mode in CYCLE else CYCLE[0]

    @keys.add("c-c")
    def _(event):  # Ctrl+C on a typed line clears it, as in a shell; on an empty line it counts to quit
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt)

    @keys.add("escape", "enter")  # Esc+Enter, and Alt+Enter (terminals send it as Esc, Enter)
    def _(event):
        event.current_buffer.insert_text("\n")

    @keys.add("enter")
    def _(event):  # a line ending in a backslash goes on, as in a shell
        buffer = event.current_buffer
        if buffer.document.text_before_cursor.endswith("\\") and buffer.document.is_cursor_at_the_end:
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()
    return keys


class Keys:
    """The keyboard while a turn runs: what is typed is kept unseen for the next prompt (an echo under the
    spinner leaves a frozen copy of it), Esc stops the turn as Ctrl+C does, and the bell rings at the end of a
    turn that took over `bell` seconds (0: never)."""

    def __init__(self, console, bell: int):
        self.console, self.bell, self.fd, self.typed, self.reader = console, bell, 0, b"", None  # fd 0: stdin

    @contextmanager
    def taken(self):
        start = time.monotonic()
        self.take()
        try:
            yield
        finally:
            self.give_back()
            if self.bell and time.monotonic() - start > self.bell:
                self.console.bell()

    def take(self):
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd, termios.TCSANOW)  # no echo, each key as it comes; Ctrl+C still signals
            self.stop, self.reader = threading.Event(), threading.Thread(target=self._read, daemon=True)
            self.reader.start()

    def give_back(self):
        if self.reader:
            self.stop.set()
            try:
                self.reader.join()
            finally:  # a Ctrl+C meanwhile must not leave the terminal without its echo
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
                self.reader = None

    def _read(self):
        while not self.stop.is_set():
            if select.select([self.fd], [], [], 0.05)[0]:  # polled: the reader stops within 50 ms
                data = os.read(self.fd, 1024)
                if re.search(rb"\x1b(?![\[O])", data):  # Esc, not an arrow's or a function key's start
                    self.stop.set()  # one interrupt, from a reader that ends here, before give_back() ends
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                self.typed += data

    def text(self) -> str:
        """What was typed, for the next prompt: Backspace done, keys' sequences and control keys left out."""
        typed, self.typed = KEY_SEQUENCE.sub("", self.typed.decode(errors="ignore")), b""
        while "\x7f" in typed:
            typed = re.sub("[^\x7f]?\x7f", "", typed, count=1)
        return "".join(char for char in typed if char.isprintable() or char == "\n").strip("\n")


class _Complete(Completer):
    """Tab completes /commands at the start of the line, model names after /model, and paths after @."""

    def __init__(self, agent):
        self.paths = PathCompleter(expanduser=True, get_paths=lambda: [str(agent.workspace.cwd)])
        self.llm = agent.llm

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        if text.startswith("/") and " " not in text:
            yield from (Completion(c, -len(text)) for c in COMMANDS if c.startswith(text))
        if text.startswith("/model ") and " " not in (name := text[7:].lstrip()):
            yield from (Completion(m, -len(name)) for m in self.llm.models() if m.startswith(name))
        word = text.split()[-1] if text.strip() and not text[-1].isspace() else ""
        if word.startswith("@"):
            yield from self.paths.get_completions(Document(word[1:]), complete_event)
