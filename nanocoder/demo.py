"""The offline demo: a tiny broken project, and a scripted model that fixes it with the real agent."""
import json
import shlex
import sys
import time
from pathlib import Path

from .events import Text
from .model import Reply, ToolCall

PROMPT = "app.py crashes when I run it. Find out why and fix it."
FILES = {
    "app.py": 'from text_utils import slugify\n\n\nif __name__ == "__main__":\n'
              '    print(slugify("Hello, nanocoder World"))\n',
    "textutils.py": 'import re\n\n\ndef slugify(text: str) -> str:\n'
                    '    """Lower-case words joined by dashes."""\n'
                    '    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))\n',
}


def make_project(folder: Path) -> None:
    for name, text in FILES.items():
        (folder / name).write_text(text)


def _call(name, **arguments):
    return {"name": name, "arguments": arguments}


def replies(python: str = sys.executable) -> list:
    """What the scripted model says, turn by turn. The last reply reads the real tool output."""
    run = f"{shlex.quote(python)} app.py"

    def report(request):
        output = request["messages"][-1]["content"].strip()
        if "hello-nanocoder-world" not in output:
            return {"content": f"The fix did not work; `{run}` still says:\n\n```\n{output}\n```"}
        return {"delay": 0.01,
                "content": "Fixed. `app.py` imported `slugify` from `text_utils`, but the module is "
                "`textutils.py`, so Python raised `ModuleNotFoundError`. I corrected the import; "
                f"the app now runs and prints:\n\n```\n{output}\n```"}

    return [
        {"content": "Let me run it and see what is in the folder.", "delay": 0.01,
         "tool_calls": [_call("bash", command=run), _call("glob", pattern="*.py")]},
        {"content": "There is no `text_utils` module. Let me read both files.", "delay": 0.01,
         "tool_calls": [_call("read_file", file_path="app.py"),
                        _call("read_file", file_path="textutils.py")]},
        {"content": "The module is `textutils.py`; the import has a stray underscore.", "delay": 0.01,
         "tool_calls": [_call("edit_file", file_path="app.py", old_string="from text_utils import slugify",
                              new_string="from textutils import slugify")]},
        {"tool_calls": [_call("bash", command=run)]},
        report,
    ]


class ScriptedLLM:
    """A deterministic Model (model.py): each request streams the script's next reply (which may read it)."""

    def __init__(self, replies, model="scripted-demo"):
        self.replies, self.model, self.max_tokens = list(replies), model, None

    def stream(self, messages, tools=None, on_event=None) -> Reply:
        reply = self.replies.pop(0)
        reply = reply({"messages": messages}) if callable(reply) else reply
        text = reply.get("content", "")
        for i in range(0, len(text), 4):  # a few characters at a time, as a provider streams
            time.sleep(reply.get("delay", 0))
            if on_event:
                on_event(Text(text[i:i + 4]))
        calls = [ToolCall(f"call_{len(messages)}_{n}", c["name"], json.dumps(c["arguments"]))
                 for n, c in enumerate(reply.get("tool_calls", []))]
        return Reply(text, tool_calls=calls, finish_reason="tool_calls" if calls else "stop")
