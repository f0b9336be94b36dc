"""todo_write, in the shape of Claude Code's TodoWrite: the model keeps a checklist of a longer task. The list
lives on the workspace (saved with the session, repeated after compaction) and goes out as an event."""
from ..events import Todos
from .base import ToolError, ToolResult, WorkspaceTool

STATUSES, FIELDS = ("pending", "in_progress", "completed"), {"content", "status", "activeForm"}
MAX_TODOS, MAX_TEXT = 50, 300


class TodoWriteTool(WorkspaceTool):
    name = "todo_write"
    description = ("Keep a checklist for a task of several steps: send the whole list each time. Mark "
                   "an item in_progress before you start it and completed once it is done. content says "
                   "what to do ('Run the tests'), activeForm the same as it is done ('Running the tests').")
    parameters = {"type": "object", "required": ["todos"], "properties": {"todos": {
        "type": "array", "items": {"type": "object", "required": sorted(FIELDS), "properties": {
            "content": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
            "activeForm": {"type": "string"}}}}}}
    read_only = True  # it changes no file: it runs in every mode, plan mode too

    def execute(self, todos: list) -> ToolResult:
        for n, item in enumerate(todos, 1):
            if not (isinstance(item, dict) and set(item) == FIELDS and item["status"] in STATUSES
                    and all(isinstance(value, str) and value.strip() for value in item.values())):
                raise ToolError(f"item {n} must be an object of exactly content, status (one of "
                                f"{', '.join(STATUSES)}) and activeForm, non-empty strings; nothing changed")
        if len(todos) > MAX_TODOS:
            raise ToolError(f"{len(todos)} items; keep the list to {MAX_TODOS} at most")
        self.workspace.todos = [{key: " ".join(value.split())[:MAX_TEXT] for key, value in item.items()}
                                for item in todos]
        done = sum(item["status"] == "completed" for item in todos)
        return ToolResult([f"Todo list saved: {done} of {len(todos)} completed."],
                          event=Todos(self.workspace.todos))


def reminder(todos: list) -> str:
    """The list as the model reads it again after a compaction ("" when there is none)."""
    items = "\n".join(f"- [{item['status']}] {item['content']}" for item in todos)
    return f"\n\n[Your todo list, as you last wrote it]\n{items}" if todos else ""
