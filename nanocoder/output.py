"""What `-p` prints on stdout: the answer (text), or in Claude Code's shapes one result object at the end
(json), or one JSON object a line as things happen (stream-json); and the list of saved sessions."""
import json
import sys
import time

from . import events as ev
from .session import list_sessions
from .visible import visible

SUBTYPES = {"success": "success", "max_turns": "error_max_turns"}


class Output:
    def __init__(self, format: str, session_id: str, model: str, cwd, tools, out=None):
        self.format, self.session_id, self.out = format, session_id, out or sys.stdout
        self.stream, self.reason = format == "stream-json", "success"  # the reason the last turn ended
        self.start, self.turns, self.text = time.monotonic(), 0, []
        self._line({"type": "system", "subtype": "init", "session_id": session_id, "model": model,
                    "cwd": str(cwd), "tools": list(tools)})

    def __call__(self, event) -> None:
        if event.depth:  # a sub-agent's work is part of its tool's result
            return
        if isinstance(event, ev.Text):
            self.text.append(event.text)
        elif isinstance(event, ev.Usage):
            self.turns += 1
        elif isinstance(event, (ev.ToolStarted, ev.RoundEnded, ev.TurnEnded)):
            if self.text:  # the text so far, before what ends it
                self._line({"type": "assistant", "message": {"role": "assistant", "content": [
                    {"type": "text", "text": "".join(self.text)}]}})
                self.text = []
            self.reason = getattr(event, "reason", self.reason)
            if isinstance(event, ev.ToolStarted):
                self._line({"type": "assistant", "message": {"role": "assistant", "content": [
                    {"type": "tool_use", "id": event.call_id, "name": event.name, "input": event.args}]}})
        if isinstance(event, ev.Todos):
            self._line({"type": "system", "subtype": "todos", "todos": event.todos})
        if isinstance(event, ev.ToolFinished):
            self._line({"type": "user", "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": event.call_id, "content": event.result,
                 "is_error": event.is_error}]}})

    def _line(self, obj):
        if self.stream:
            print(json.dumps(obj), file=self.out, flush=True)

    def result(self, answer: str, reason: str, usage) -> None:
        """The answer, or the final object of both JSON formats; reason: the agent's ("success"...)."""
        if self.format == "text":
            if answer and reason not in ("interrupted", "error"):  # why a turn failed is a line on stderr
                print(visible(answer), file=self.out, flush=True)  # JSON escapes it itself
            return
        result = {"type": "result", "subtype": SUBTYPES.get(reason, "error_during_execution"),
                  "is_error": reason != "success", "result": answer, "stop_reason": reason,
                  "session_id": self.session_id, "num_turns": self.turns,
                  "duration_ms": round((time.monotonic() - self.start) * 1000),
                  "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                            "cached_input_tokens": usage.cached_tokens}}
        print(json.dumps(result), file=self.out, flush=True)


def sessions_listing(cwd) -> str:
    """Saved sessions a line each, this folder's first (--sessions, and the REPL's /sessions)."""
    listing = "\n".join(f"{r['id']}  {r['date']}  {r['messages']:>4} msgs  {r['cwd']}  {r['prompt']}"
                         for r in list_sessions(cwd))
    return visible(listing or "no saved sessions yet")
