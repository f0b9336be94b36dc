"""Running one round's tool calls for the Agent (its base class): in parallel, each asked about first where
the permission mode says so, each answered exactly once in the history, whatever happens."""
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass

from . import events as ev
from . import messages as msg
from .history import INTERRUPTED
from .permissions import READ, RUN
from .tools.base import ToolError, ToolResult, arguments

REPEATED = "[You made these same calls in the previous rounds too; try something else.]"


class Cancelled(Exception):
    """Raised in an agent's own thread after cancel() was called from another."""


@dataclass
class ToolOutcome:
    """How one call ended: its result, and the seconds it ran (None: it never ran; refused, declined,
    blocked, malformed, or interrupted before it started)."""
    result: ToolResult
    took: float | None = None


class Calls:
    """The Agent's tool calls; the Agent holds tools, permissions, gate, approvals, workspace, messages,
    emit(), _check(), _cancelled, _pending and _call (what a pool thread runs)."""

    def _run_tools(self, calls, cut=False, repeated=False) -> None:
        """Run one round's calls concurrently, but those on one file in the order the model gave; report each
        as it finishes; every call gets exactly one result, even when interrupted: each is recorded before it
        is reported, all are in the history before the last reports (a Ctrl+C in a consumer loses none)."""
        outcomes, told, jobs, latest = {}, set(), {}, {}  # latest: a path -> the last job touching it
        parsed = [arguments(c.arguments) for c in calls]
        pool = ThreadPoolExecutor(max_workers=min(8, len(calls)))

        def record(i, outcome):
            if repeated:
                outcome.result.content.append(REPEATED)
            outcomes[i] = outcome

        def finish(i, outcome):
            record(i, outcome)
            told.add(i)
            self._report(calls[i], parsed[i].values, outcome)
        try:
            for i, (call, parse) in enumerate(zip(calls, parsed)):  # approvals first, one at a time
                args = parse.values
                self.emit(ev.ToolStarted(call.id, call.name, args))
                try:
                    if cut:
                        raise ToolError("this call was cut off by the token limit and not run; "
                                        "send a smaller one")
                    kind = self._permit(call, args, parse.problem)
                    paths = self.tools[call.name].paths(args)
                    after = {latest[p] for p in paths if p in latest}
                    job = pool.submit(self._run_one, call, args, kind, after)
                    latest.update(dict.fromkeys(paths, job))
                    jobs[job] = i
                except ToolError as e:  # refused, declined, blocked, malformed: it never ran (no time)
                    finish(i, ToolOutcome(ToolResult.error(str(e))))
            for job in as_completed(jobs):
                i = jobs[job]
                finish(i, self._offer_rerun(calls[i], parsed[i].values, job.result()))
        except KeyboardInterrupt:
            self.cancel()
            for job, i in jobs.items():  # keep what did finish
                if job.done() and not job.cancelled() and i not in outcomes:
                    record(i, job.result())
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            for i in range(len(calls)):
                if i not in outcomes:
                    record(i, ToolOutcome(ToolResult([INTERRUPTED], is_error=True)))
            self.messages.extend(msg.tool_result(call.id, outcomes[i].result.text(),
                                                 outcomes[i].result.is_error) for i, call in enumerate(calls))
            for i, call in enumerate(calls):
                if i not in told:
                    self._report(call, parsed[i].values, outcomes[i])

    def _report(self, call, args, outcome: ToolOutcome) -> None:
        result, ran = outcome.result, outcome.took is not None
        self.emit(ev.ToolFinished(call.id, call.name, args, result.text(), result.is_error,
                                  outcome.took or 0.0, result.diff, ran, result.exit_code, result.signal))
        if result.event is not None:
            self.emit(result.event)

    def _permit(self, call, args, problem=None) -> str:
        """The call's permission kind (judged again when it runs), or ToolError saying why not."""
        tool = self.tools.get(call.name)
        if tool is None:
            raise ToolError(f"unknown tool {call.name!r}. Available tools: {', '.join(self.tools)}.")
        if problem or (problem := tool.check_args(args)):
            raise ToolError(f"{problem}. The schema is: {json.dumps(tool.parameters)}")
        permission = tool.permission(args)
        kind, key, why = permission.kind, permission.key, permission.why
        verdict = self.permissions.check(kind, key)
        if verdict == "deny":
            raise ToolError(f"refused: {why}. This is never run, whatever the permission mode.")
        if self.permissions.mode == "plan" and kind not in (READ, RUN):
            raise ToolError("refused: plan mode changes nothing; investigate, then end your turn with the "
                            "plan (the user carries it out once they approve it)")
        if self.gate and not (veto := self.gate(call.name, args)).allowed:
            raise ToolError(f"blocked by the gate: {veto.reason}")
        if verdict == "ask":
            decision = self._ask_user(call, args, why, tool.preview(args), key)
            if not decision.allowed:
                raise ToolError("the user declined to run this call" + (
                    f", saying: {decision.reason}" if decision.reason else ". Ask them how to proceed."))
            if decision.scope:
                self.permissions.always.add(decision.scope)
        return kind

    def _ask_user(self, call, args, why, preview, scope="") -> ev.Decision:
        """Emit an approval request and wait for its answer; cancel() answers it with a deny."""
        if not self.approvals:
            return ev.Decision.once()
        request = ev.ApprovalRequested(uuid.uuid4().hex, call.id, call.name, args, why, preview, scope)
        self._pending[request.request_id] = request
        try:
            self._check()  # cancelled before it was asked
            self.emit(request)
            decision = request.decision.result()
        finally:
            del self._pending[request.request_id]
        self._check()  # a deny that cancel() gave: the turn ends, the call never runs
        return decision

    def _run_one(self, call, args, kind: str, after=()) -> ToolOutcome:
        """The call's outcome, on a pool thread, once the earlier calls on its files (`after`) are done; run
        as the work of call.id (a sub-agent it spawns names it as its parent)."""
        wait(after)  # they were submitted first, so they run already or are done: no deadlock
        if self._cancelled.is_set():
            return ToolOutcome(ToolResult([INTERRUPTED], is_error=True))
        start, tool = time.monotonic(), self.tools[call.name]
        self._call.id = call.id
        try:
            now = tool.permission(args)  # judged again as the path resolves now: a parallel `cd` moves it
            if now.kind != kind and self.permissions.check(now.kind, now.key) != "allow":
                raise ToolError(f"not run: the call now means something else ({now.why}); ask again")
            result = ToolResult.of(tool.execute(**args))
        except ToolError as e:
            result = ToolResult.error(str(e))
        except Exception as e:  # a tool's bug must not end the session; the model can adapt
            result = ToolResult.error(f"{tool.name} failed: {type(e).__name__}: {e}")
        finally:
            self._call.id = None
        return ToolOutcome(result, time.monotonic() - start)

    def _offer_rerun(self, call, args, outcome: ToolOutcome) -> ToolOutcome:
        """A call that failed in the sandbox may run again outside it, if the user says so (ask mode only)."""
        rerun = outcome.result.rerun
        if rerun is None or self.permissions.mode != "ask" or \
                not self._ask_user(call, args, outcome.result.question, "").allowed:
            return outcome
        start = time.monotonic()
        return ToolOutcome(rerun(), time.monotonic() - start)
