"""The agent loop: ask the model, run the tools it calls (in parallel), repeat until it answers.

Everything the loop wants to show a person goes to a Callbacks object; as a library,
Agent.chat() prints nothing.
"""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from . import events
from .context import Context
from .history import INTERRUPTED, fresh_id, used_ids
from .llm import ContextTooLong
from .permissions import Permissions
from .prompt import system_prompt
from .tools import builtin_tools
from .tools.base import ToolError, Workspace


class Cancelled(Exception):
    """Raised in an agent's own thread after cancel() was called from another."""


class Callbacks:
    """What the agent reports while it works. The CLI overrides these; by default all are silent."""
    def text(self, chunk: str): pass
    def reasoning(self, chunk: str): pass
    def tool_start(self, name: str, args: dict, depth: int = 0): pass  # depth 1: a sub-agent's
    def tool_end(self, name: str, args: dict, result: str, depth: int = 0): pass
    def notice(self, message: str): pass  # e.g. "compressed the context"
    def retry(self, message: str): pass  # e.g. "the request failed; retrying in 2.0 s"
    def approve(self, name: str, args: dict, why: str = "", preview: str = ""):
        """Asked when the permission mode says to ask: True, False, or "always" (for the session)."""
        return True


class Usage:
    def __init__(self):
        self.prompt_tokens = self.completion_tokens = 0
        self._lock = threading.Lock()  # sub-agents in pool threads add to their parent's

    def add(self, prompt: int, completion: int):
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion


class Agent:
    def __init__(self, llm, tools=None, *, callbacks=None, cwd=None, max_context=None,
                 max_rounds=100, sub_agents=True, usage=None, permissions=None):
        self.llm, self.max_rounds = llm, max_rounds
        self.callbacks = callbacks or Callbacks()
        self.workspace = Workspace(cwd)
        self.usage = usage or Usage()
        self.permissions = permissions or Permissions()
        self.context = Context(max_context, self.usage)
        found = builtin_tools(self.workspace, parent=self if sub_agents else None) + list(tools or [])
        self.tools = {t.name: t for t in found}  # a custom tool may replace a built-in of its name
        self.messages = [{"role": "system", "content": ""}]
        self._cancelled = threading.Event()
        self._ids = (None, 0, set())  # (the history list, how much of it was read, its call ids)

    def chat(self, prompt: str) -> str:
        """Run one user turn to its end and return the final answer. History is kept."""
        # Rebuilt every turn: the working directory, git status and date move on.
        self.messages[0] = {"role": "system", "content": system_prompt(self.workspace.cwd, self.tools)}
        self.messages.append({"role": "user", "content": prompt})
        schemas = [t.schema() for t in self.tools.values()]
        self._cancelled.clear()
        for _ in range(self.max_rounds):
            if self._cancelled.is_set():  # checked before each request and before each tool run
                raise Cancelled("stopped by the user")
            reply = self._ask(schemas)
            self.usage.add(reply.prompt_tokens, reply.completion_tokens)
            if self._cancelled.is_set():
                raise Cancelled("stopped by the user")
            used = self._used_ids()
            for call in reply.tool_calls:  # a provider may reuse ids across turns; a request may not
                call.id = fresh_id(call.id, used)
            self.messages.append(reply.message())
            if not reply.tool_calls:
                return reply.content
            self._run_tools(reply.tool_calls)
        return f"Stopped after {self.max_rounds} rounds of tool calls without a final answer."

    def _ask(self, schemas):
        """One request; if the provider says the history is too long after all, compress and retry once."""
        for force in (False, True):
            note = self.context.fit(self.messages, self.llm, schemas, force=force)
            if note:
                self.callbacks.notice(note)
            try:
                return self.llm.stream(self.messages, schemas, self._relay)
            except ContextTooLong:
                if force:
                    raise

    def _relay(self, event):
        """The client's events to the callbacks, until the agent reports in events itself."""
        if isinstance(event, events.Retry):
            self.callbacks.retry(event.message + ("; the text shown above is discarded" if event.discarded else ""))
        else:
            (self.callbacks.text if isinstance(event, events.Text) else self.callbacks.reasoning)(event.text)

    def _used_ids(self) -> set:
        """Call ids in the history, read on from where the last round stopped (a walk of it all made
        each round slower); a replaced history is read afresh. Ids compressed away cost a rename."""
        seen, read, ids = self._ids
        if seen is not self.messages or read > len(self.messages):
            read, ids = 0, set()
        ids |= used_ids(self.messages[read:])
        self._ids = (self.messages, len(self.messages), ids)
        return ids

    def _run_tools(self, calls) -> None:
        """Run one turn's tool calls concurrently and append their results in the calls' order."""
        results = [None] * len(calls)
        pool = ThreadPoolExecutor(max_workers=min(8, len(calls)))
        futures = {}
        try:
            jobs = []
            for i, call in enumerate(calls):  # approvals first, one at a time, on this thread
                tool, args, error = self._prepare(call)
                results[i] = error or self._permit(tool, args)
                if results[i] is None:
                    jobs.append((i, tool, args))
            futures = {i: pool.submit(self._run_one, tool, args) for i, tool, args in jobs}
            for i, future in futures.items():
                results[i] = future.result()
        except KeyboardInterrupt:
            self.cancel()
            for i, future in futures.items():  # keep what did finish
                if future.done() and not future.cancelled():
                    results[i] = future.result()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            # Every call gets exactly one answer, even when interrupted: the history stays valid.
            self.messages.extend(
                {"role": "tool", "tool_call_id": c.id, "content": r if r is not None else INTERRUPTED}
                for c, r in zip(calls, results))

    def _prepare(self, call):
        tool = self.tools.get(call.name)
        if tool is None:
            return None, None, f"Error: unknown tool {call.name!r}. Available tools: {', '.join(self.tools)}."
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as e:
            return None, None, (f"Error: the arguments are not valid JSON ({e}). Send one JSON object "
                                f"matching this schema: {json.dumps(tool.parameters)}")
        problem = tool.check_args(args)
        if problem:
            return None, None, f"Error: {problem}. The schema is: {json.dumps(tool.parameters)}"
        return tool, args, None

    def _permit(self, tool, args) -> str | None:
        """None if the call may run, else the result that tells the model why not."""
        kind, key, why = tool.permission(args)
        verdict = self.permissions.check(kind, key)
        if verdict == "deny":
            return f"Error: refused: {why}. This is never run, whatever the permission mode."
        if verdict == "ask":
            answer = self.callbacks.approve(tool.name, args, why, tool.preview(args))
            if answer == "always":
                self.permissions.always.add(key)
            elif not answer:
                return "The user declined to run this tool call. Ask them how to proceed."
        return None

    def _run_one(self, tool, args) -> str:
        self.callbacks.tool_start(tool.name, args)
        try:
            result = tool.execute(**args)
            result = result if isinstance(result, str) else str(result)  # providers want text
        except ToolError as e:
            result = f"Error: {e}"
        except Exception as e:  # a tool's bug must not end the session; the model can adapt
            result = f"Error: {tool.name} failed: {type(e).__name__}: {e}"
        self.callbacks.tool_end(tool.name, args, result)
        return result

    def cancel(self):
        """Stop from another thread: running tools now, the loop before its next tools."""
        self._cancelled.set()
        for tool in self.tools.values():
            tool.cancel()

    def compact(self) -> str | None:
        """Compress the history now (the /compact command)."""
        return self.context.fit(self.messages, self.llm, [t.schema() for t in self.tools.values()], force=True)

    def reset(self):
        self.messages = self.messages[:1]
