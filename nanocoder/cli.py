"""The command line: flags, one-shot mode (-p), the offline demo. With repl.py and view.py, the only code that
draws; rich and prompt_toolkit load only when something is drawn (--help stays instant)."""
import argparse
import errno
import os
import signal
import stat
import sys
from pathlib import Path

from . import __version__
from .config import Config, ConfigError, read_settings
from .app import Hangup, make_agent
from .events import fan_out
from .model import LLMError
from .output import Output, sessions_listing
from .permissions import MODES
from .session import Session, SessionError, home, latest
from .visible import terminal, visible

EPILOG = """examples:
  nanocoder                                  the REPL in this folder (/help lists its commands)
  nanocoder -p "add type hints to utils.py" -y
  git diff | nanocoder -p "review this"      piped text is added to the prompt (-p - reads it all)
  nanocoder -p "run the tests" --output-format json | jq -r .result

environment:
  OPENAI_API_KEY, OPENAI_BASE_URL            the provider (any OpenAI-compatible API)
  ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL      Anthropic's API (pip install 'nanocoderagent[anthropic]'),
  ANTHROPIC_AUTH_TOKEN                       or a bearer token in place of its key
  NANOCODER_PROVIDER (default: anthropic for claude-* models, else openai), NANOCODER_MODEL (gpt-4o),
  NANOCODER_MAX_TOKENS, NANOCODER_TEMPERATURE, NANOCODER_MAX_CONTEXT (the window in tokens, default 128000),
  NANOCODER_TIMEOUT (seconds of silence before a retry, default 600), NANOCODER_MAX_TURNS (default: no cap),
  NANOCODER_PASS_ENV=NAME,... (secret-looking variables commands may still see)

a project's .env is not read (export the key). ~/.nanocoder/settings.json holds
the model, provider, base_url and api_key_env (the variable with the key);
flags win over the environment, that over the file (README: Settings).
Sessions are saved after every round in ~/.nanocoder/sessions/. exit codes: 0 success, 1 error,
2 usage, 130 interrupted, 143 SIGTERM, 129 SIGHUP (the turn saved first)."""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="nanocoder", description="A minimal AI coding agent for the terminal.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", nargs="?", metavar="PROMPT", help="start the REPL with this prompt")
    p.add_argument("-m", "--model", help="model name (env NANOCODER_MODEL, default gpt-4o)")
    p.add_argument("--provider", help="the API family: openai (any OpenAI-compatible API) or anthropic")
    p.add_argument("--base-url", help="the API's base URL (env OPENAI_BASE_URL or ANTHROPIC_BASE_URL)")
    p.add_argument("--api-key", help="API key; other users can read it in `ps`: prefer the variables below")
    p.add_argument("-p", "--prompt", help="run one task, print the answer and exit (- reads it from stdin)")
    p.add_argument("--output-format", choices=("text", "json", "stream-json"),
                   help="with -p: the answer as text (default), one JSON result, or JSON lines as it works")
    p.add_argument("--max-turns", type=int, metavar="N", help="stop a turn after N rounds of tool calls")
    p.add_argument("-r", "--resume", metavar="ID", help="resume a saved session")
    p.add_argument("-c", "--continue", dest="cont", action="store_true",
                   help="resume the most recent session of this folder")
    p.add_argument("--sessions", action="store_true", help="list the saved sessions and exit")
    p.add_argument("-y", "--yes", action="store_true", help="run without asking (--permission-mode yes)")
    p.add_argument("--permission-mode", choices=MODES, help="ask before edits and commands (default), let "
                   "edits in the folder run (edits), run all not forbidden (yes), or read and plan (plan)")
    p.add_argument("--sandbox", choices=("read-only", "workspace-write", "off"), default="workspace-write",
                   help="what commands may write (Linux, Landlock): nothing, the folder and temp (default), "
                   "or anything (off); commands judged read-only always run read-only")
    p.add_argument("--allow-unix-sockets", action="store_true",
                   help="let commands open named unix sockets (docker.sock, ssh-agent, tmux) under "
                   "workspace-write; refused by default, always under read-only")
    p.add_argument("--demo", action="store_true", help="a short scripted session, offline, no key needed")
    p.add_argument("--version", action="version", version=f"nanocoder {__version__}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _hang_up)
    try:
        if args.demo:
            return demo()
        if args.sessions:
            print(sessions_listing(Path.cwd().resolve()), flush=True)
            return 0
        if args.prompt is not None and args.first is not None:
            return _usage("a PROMPT and -p were both given: pass the text to -p (one task), "
                          "or drop -p (the REPL)")
        if args.output_format and args.prompt is None:
            return _usage(f"--output-format {args.output_format} needs -p (the REPL prints as it goes)")
        prompt = _prompt(args.prompt)
        if prompt is not None and not prompt.strip():
            return _usage("the prompt is empty; nothing was sent")
        notes = []
        settings = read_settings(home() / "settings.json", notes)
        for note in notes:
            print(f"nanocoder: {visible(note)}", file=sys.stderr)
        config = Config.load(args.model, args.api_key, args.base_url, args.max_turns, os.environ,
                             settings=settings, provider=args.provider)
        if not (config.api_key or config.auth_token):
            raise ConfigError(f"no API key: export {config.api_key_env} (a .env is not read) or pass "
                              "--api-key (try `nanocoder --demo` for an offline tour)")
        session = Session.load(args.resume) if args.resume else None
        if args.cont:
            session = latest(Path.cwd().resolve())
        if session and not args.model:  # a resumed session keeps its model unless -m says otherwise
            config.model = session.model
        mode = "yes" if args.yes else args.permission_mode or "ask"
        if prompt is not None:
            return one_shot(config, prompt, mode, session, args.output_format or "text", args.sandbox,
                            args.allow_unix_sockets)
        from .repl import repl
        return repl(config, mode, session, args.first, args.sandbox, args.allow_unix_sockets)
    except Hangup as e:
        return 128 + e.args[0]
    except KeyboardInterrupt:  # Ctrl+C between two prompts, or before the first: a quiet exit
        print(file=sys.stderr)
        return 130
    except (ConfigError, LLMError, SessionError) as e:
        print(f"nanocoder: {visible(str(e))}", file=sys.stderr)
        return 1
    except OSError as e:  # EPIPE: the reader of stdout left (`| head -1`); it wanted no more; no traceback
        if e.errno not in (errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise
        if e.errno != errno.EPIPE:
            print(f"nanocoder: cannot write the output: {e.strerror}", file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        return 0 if e.errno == errno.EPIPE else 1
    finally:  # a signal that lands once main is done ends the process at once, without a traceback
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: os._exit(128 + signum))


def _usage(problem: str) -> int:
    print(f"nanocoder: {visible(problem)}", file=sys.stderr)
    return 2


def _hang_up(signum, frame):
    # A second signal while this one kills the command and saves the turn changes nothing: the exit that
    # follows has this signal's code. (A Python no-op, not SIG_IGN, which commands run later would inherit.)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    raise Hangup(signum)


def _prompt(prompt: str | None) -> str | None:
    """-p's text, with what is piped in appended (all of it for `-p -`), as Claude Code does."""
    if prompt is None:
        return None
    try:
        piped = stat.S_ISFIFO(os.fstat(0).st_mode) or stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:  # no stdin at all
        piped = False
    if not (piped or prompt == "-"):
        return prompt
    text = sys.stdin.buffer.read().decode("utf-8", "replace")
    return text if prompt == "-" else f"{prompt}\n\n{text}" if text.strip() else prompt


def one_shot(config, prompt, mode, session, output_format, sandbox, unix_sockets=False) -> int:
    from .view import View
    view = View(terminal(stderr=True, highlight=False), interactive=False, stream_text=False,
                yes=mode == "yes")
    wired = make_agent(config, view, session, mode, sandbox, unix_sockets=unix_sockets)
    agent, session = wired.agent, wired.session
    if sandbox != "off" and (missing := agent.workspace.sandbox.support()):
        view.notice(missing)  # never claim a protection the platform lacks
    out = Output(output_format, session.id, agent.llm.model, agent.workspace.cwd, agent.tools)
    agent.on_event = fan_out(out, agent.on_event)
    try:
        answer = agent.chat(prompt)
    except KeyboardInterrupt:
        print("nanocoder: interrupted", file=sys.stderr)
        out.result("interrupted", "interrupted", agent.usage)
        raise
    except LLMError as e:
        out.result(str(e), "error", agent.usage)
        raise
    out.result(answer, out.reason, agent.usage)
    return 0 if out.reason == "success" else 1  # why not: the view's notice on stderr


def demo() -> int:
    """A scripted session: the real agent loop and tools, in a temporary folder; no key, no network."""
    import tempfile
    from . import demo as script
    from .agent import Agent
    from .permissions import Permissions
    from .view import View
    console = terminal(highlight=False)
    with tempfile.TemporaryDirectory(prefix="nanocoder-demo-") as folder:
        script.make_project(Path(folder))
        console.print(f"[bold]nanocoder demo[/] · a scripted model, real tools, in {folder}\n"
                      f"[dim]No key and no network: the model's replies come from a script.[/]\n")
        console.print(f"[bold]›[/] {script.PROMPT}")
        view = View(console)
        agent = Agent(script.ScriptedLLM(script.replies()), on_event=view, cwd=folder, approvals=True,
                      permissions=Permissions("yes"))
        agent.chat(script.PROMPT)
        view.end()
    console.print("\n[dim]Try it for real: OPENAI_API_KEY=... nanocoder -m MODEL (see README)[/]")
    return 0
