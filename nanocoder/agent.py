"""The agent loop: ask the model, run the tools it calls (in parallel), repeat until it answers. What
happens goes as events to on_event; questions for the user to approve. Agent.chat() prints nothing."""
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import events as ev
from . import messages as msg
from .calls import Calls, Cancelled
from .context import Context
from .history import fresh_id
from .model import ContextTooLong, LLMError
from .permissions import Permissions
from .project import Project
from .prompt import PLAN_NOTE, environment, system_prompt
from .tools import Registry, builtins
from .tools.base import Workspace, printable
from .tools.todo import reminder

if TYPE_CHECKING:
    from .model import Model, Reply

MAX_DEPTH = 1  # sub-agents of sub-agents: none (no agent tool at this depth)
REPEATS = 3  # the same calls this many rounds in a row get a warning; twice as many end the turn
ENDINGS = {"length": "the answer was cut off by the token limit (NANOCODER_MAX_TOKENS)",
           "content_filter": "the provider withheld the answer (content filter)",
           "refusal": "the model refused to answer",
           "empty": "the model gave an empty answer"}


@dataclass
class Usage:
    """Tokens a session used: its agent's, its sub-agents' (adding from pool threads) and its summaries'."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, reply: "Reply"):
        with self._lock:
            self.prompt_tokens += reply.prompt_tokens
            self.completion_tokens += reply.completion_tokens
            self.cached_tokens += reply.cached_tokens

    def reset(self):
        with self._lock:
            self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0


@dataclass
class Ending:
    """How a turn ended: the answer, why (TurnEnded.reason), and what to say if it is not a success."""
    answer: str = ""
    reason: str = "error"
    notice: str = ""


class Agent(Calls):
    def __init__(self, llm: "Model", tools=None, *, on_event=None, approvals=False, gate=None, cwd=None,
                 max_context=None, max_turns=None, sub_agents=True, usage=None, permissions=None, depth=0,
                 registry: Registry | None = None, parent_call_id=None):
        """tools: tool objects of one's own, added to the registry (one may replace a built-in); approvals: a
        call that needs the user's yes goes out as an ev.ApprovalRequested and waits for its answer (False:
        allowed, as for a library's agent); gate(name, args) -> a Decision (a library's own veto)."""
        self.llm, self.max_turns, self.depth, self.parent_call_id = llm, max_turns, depth, parent_call_id
        self.on_event, self.gate, self.approvals = on_event or (lambda event: None), gate, approvals
        self._pending: dict[str, ev.ApprovalRequested] = {}  # requests not yet answered, by id
        self.workspace = Workspace(cwd)
        self.usage = usage or Usage()
        self.permissions = permissions or Permissions()
        self.workspace.permissions = self.permissions
        self.project = Project.load(self.workspace.cwd)  # read once per session: the prompt's prefix holds
        self.context = Context(max_context, self.usage)
        self.context.pinned = lambda: reminder(self.workspace.todos)  # the list outlives a compaction
        self.registry = (registry or builtins()).copy()
        for tool in tools or []:
            self.registry.add_tool(tool)
        spawn = self.spawn if sub_agents and depth < MAX_DEPTH else None
        self.tools = self.registry.build(self.workspace, spawn)
        self.schemas = [t.schema() for t in self.tools.values()]  # never change: the provider caches them
        self.messages = [msg.system("")]
        self.checkpoints = None  # a front end's (checkpoints.Checkpoints): snapshots around each turn
        self.turn_id = ""
        self._cancelled = threading.Event()
        self._call = threading.local()  # .id: the call a pool thread runs, which spawn() names as the parent
        # the call ids of self.messages, kept as rounds add to it (a walk of it all made each round slower)
        self._ids, self._ids_of = set(), None

    def emit(self, event: ev.Event) -> None:
        event.depth, event.turn_id, event.parent_call_id = self.depth, self.turn_id, self.parent_call_id
        self.on_event(event)

    def spawn(self) -> "Agent":
        """A sub-agent for the agent tool's call on this thread: a fresh context and cwd; registry, usage,
        permissions and file locks shared; its events one level deeper, naming that call as their parent."""
        sub = Agent(self.llm, on_event=self.on_event, approvals=self.approvals, gate=self.gate,
                    cwd=self.workspace.cwd, max_context=self.context.window, max_turns=self.max_turns,
                    usage=self.usage, permissions=self.permissions, depth=self.depth + 1,
                    registry=self.registry, parent_call_id=getattr(self._call, "id", None))
        for shared in ("root", "sandbox", "sandbox_policy", "secrets", "unix_sockets",
                       "trusted_path", "git", "_file_locks"):  # not its cwd, nor what it has read
            setattr(sub.workspace, shared, getattr(self.workspace, shared))
        return sub

    def chat(self, prompt: str) -> str:
        """Run one user turn to its end and return the final answer. History is kept."""
        self._cancelled.clear()
        self.turn_id = uuid.uuid4().hex[:12]
        prompt = printable(prompt)  # undecodable bytes from argv or a pipe must not break the request
        env, system = environment(self.workspace), self.messages[0]
        if not system["content"]:  # built once: an unchanged prefix keeps the provider's cache warm
            system = self.messages[0] = msg.system(system_prompt(self.tools, env, self.project))
        elif env != system.get("environment"):  # a session saved before the mark: told once more
            # what moved on (folder, date, git status) comes as a note, never as a rewrite
            prompt = f"<environment>\n{env}\n</environment>\n\n{prompt}"
        system["environment"] = env  # not sent: the adapters leave it out
        if self.permissions.mode == "plan":  # told in the turn: the system prompt (a cached prefix) stays
            prompt = f"{prompt}\n\n{PLAN_NOTE}"
        self.messages.append(msg.user(prompt))
        if self.checkpoints and (note := self.checkpoints.begin(self.messages[-1])):
            self.emit(ev.Notice(note))
        self.emit(ev.TurnStarted(prompt))
        ending = Ending()
        try:
            ending = self._loop()
            if ending.notice:
                self.emit(ev.Notice(ending.notice))
            return ending.answer
        except (KeyboardInterrupt, Cancelled):
            ending.reason = "interrupted"  # the model is told next turn why its work stopped
            self.messages.append(msg.user("[The user interrupted this turn.]"))
            raise
        except LLMError as e:
            ending.answer = str(e)
            raise
        finally:
            if self.checkpoints:
                self.checkpoints.end()
            self.emit(ev.TurnEnded(ending.answer, ending.reason, self.messages))

    def _loop(self) -> Ending:
        repeats, last = 0, None
        for turn in itertools.count(1):
            if self.max_turns and turn > self.max_turns:
                rounds = f"{self.max_turns} round{'s' if self.max_turns > 1 else ''}"
                return Ending("", "max_turns", f"stopped after {rounds} (--max-turns)")
            reply = self._ask()
            if self._ids_of is not self.messages:  # a history put in place (a resume) is read afresh
                self._ids = {c.get("id") for m in self.messages for c in m.get("tool_calls") or ()}
                self._ids_of = self.messages
            for call in reply.tool_calls:  # a provider may reuse ids across turns; a request may not
                call.id = fresh_id(call.id, self._ids)
            # a JSON "\ud800" from the provider is a lone surrogate: kept, it breaks every later request
            reply.content = printable(reply.content)
            self.messages.append(json.loads(printable(json.dumps(reply.message(), ensure_ascii=False))))
            if not reply.tool_calls or reply.finish_reason in ("content_filter", "refusal"):
                self.emit(ev.RoundEnded(self.messages))
                said = reply.content.strip()
                why = reply.finish_reason if reply.finish_reason in ENDINGS else "" if said else "empty"
                return Ending(reply.content, why or "success", ENDINGS.get(why, ""))
            calls = [(c.name, c.arguments) for c in reply.tool_calls]
            repeats, last = (repeats + 1 if calls == last else 1), calls
            self._run_tools(reply.tool_calls, cut=reply.finish_reason == "length",
                            repeated=repeats >= REPEATS)
            self.emit(ev.RoundEnded(self.messages))
            if repeats >= 2 * REPEATS:
                return Ending("", "loop", f"stopped: the model made the same calls {repeats} times in a row")

    def _ask(self) -> "Reply":
        """One request; if the provider says the history is too long after all, compress and retry once."""
        for force in (False, True):
            self._check()
            before = force and json.dumps(self.messages)
            if note := self.context.fit(self.messages, self.llm, self.schemas, force=force):
                self.emit(ev.Notice(note))
            if force and json.dumps(self.messages) == before:  # the same request would fail again
                raise LLMError("the conversation does not fit the model's window "
                               "and compressing freed nothing; try /compact, "
                               "a larger NANOCODER_MAX_CONTEXT, or a model with a larger window")
            try:
                reply = self.llm.stream(self.messages, self.schemas, self.emit)
                break
            except ContextTooLong:
                if force:
                    raise
        self._check()
        self.usage.add(reply)
        self.emit(ev.Usage(reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens))
        return reply

    def _check(self):  # before and after each request
        if self._cancelled.is_set():
            raise Cancelled("stopped by the user")

    def cancel(self):
        """Stop from another thread: running tools, pending approvals (denied), the loop at its next step."""
        self._cancelled.set()
        for request in self._pending.copy().values():
            request.answer(ev.Decision.deny("stopped by the user"))
        for tool in self.tools.values():
            tool.cancel()

    def compact(self) -> str | None:
        return self.context.fit(self.messages, self.llm, self.schemas, force=True)

    def reset(self):
        """A new conversation: the prompt and project files read again; "always", usage, todos forgotten."""
        self.messages = [msg.system("")]
        self.project, self.workspace.todos = Project.load(self.workspace.cwd), []
        self.permissions.always.clear()
        self.usage.reset()
