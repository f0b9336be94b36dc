"""The agent as the front ends use it, wired: the model, the view that draws and asks, the session saved as it
goes. cli.py and repl.py both build on it (neither imports the other's module level)."""
from dataclasses import asdict, dataclass
from pathlib import Path

from .events import RoundEnded, ToolFinished, TurnEnded, fan_out
from .history import round_so_far
from .messages import tool_result
from .session import Session


class Hangup(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop the turn like Ctrl+C (commands killed, turn saved), then exit."""


@dataclass
class Wired:
    agent: object  # nanocoder.agent.Agent (imported when wired, so --help stays instant)
    session: Session
    saver: "Saver"


def make_agent(config, view, session, mode, sandbox, unix_sockets=False) -> Wired:
    """The agent, wired: the view draws, the session saves after every round."""
    from .agent import Agent
    from .history import repair
    from .permissions import Permissions
    llm = make_model(config)
    session = session or Session(model=llm.model, cwd=str(Path.cwd().resolve()))
    agent = Agent(llm, approvals=True, max_context=config.max_context, max_turns=config.max_turns,
                  permissions=Permissions(mode))
    agent.workspace.sandbox_policy, agent.workspace.unix_sockets = sandbox, unix_sockets
    agent.workspace.secrets |= {config.api_key, config.auth_token} - {None}  # kept from commands' environment
    if session.messages:  # saved mid-turn, or by an older version: made valid before it is sent
        agent.messages = repair(session.messages)
        agent.workspace.todos = session.todos
    saver = Saver(session, agent, view)
    agent.on_event = fan_out(view, saver)
    return Wired(agent, session, saver)


def make_model(config):
    settings = dict(max_tokens=config.max_tokens, temperature=config.temperature,
                    timeout=config.timeout or 600.0)
    if config.provider == "anthropic":
        from .anthropic_api import AnthropicModel
        return AnthropicModel(config.model, config.api_key, config.base_url, auth_token=config.auth_token,
                              **settings)
    from .llm import LLM
    return LLM(config.model, config.api_key, config.base_url, **settings)


class Saver:
    """Saves the session as the agent works: after every round, and after each call that may have changed
    something (killed mid-round, it says what was done); a full disk or a read-only home is one warning."""

    def __init__(self, session, agent, view):
        self.session, self.agent, self.view, self.warned = session, agent, view, False
        self.done = {}  # this round's finished calls: id -> result

    def __call__(self, event):
        if event.depth:  # a sub-agent's work is saved with its parent's round
            return
        if isinstance(event, ToolFinished):
            self.done[event.call_id] = tool_result(event.call_id, event.result, event.is_error)
            if event.ran and not getattr(self.agent.tools.get(event.name), "read_only", True):
                self.save(round_so_far(self.agent.messages, self.done))
        elif isinstance(event, (RoundEnded, TurnEnded)):
            self.done = {}
            self.save(event.messages)

    def save(self, messages):
        self.session.model, self.session.messages = self.agent.llm.model, messages
        self.session.todos = self.agent.workspace.todos
        if self.agent.checkpoints:  # the REPL's (a one-shot run keeps those it resumed)
            self.session.checkpoints = [asdict(step) for step in self.agent.checkpoints.steps]
        try:
            self.session.save()
        except OSError as e:
            if not self.warned:
                self.view.notice(f"could not save the session: {e.strerror or e}")
            self.warned = True
        if self.session.forked_from:
            self.view.notice(f"session {self.session.forked_from} was saved by another nanocoder "
                             f"meanwhile; this conversation goes on as session {self.session.id}")
            self.session.forked_from = None
