"""Who decides whether a tool call runs. Each tool says what a call would do (Tool.permission): read, edit in
the workspace, run something, write outside it, write a protected file (.git internals, ~/.ssh, shell
start-up files: asked every time) or something forbidden (`rm -rf ~`: denied, even with --yes). A mode
allows the kinds ALLOWED lists for it, asks for the rest; "always" remembers a tool (for bash, a command
prefix) for the session, protected writes excepted."""
from pathlib import Path

MODES = ("ask", "edits", "yes")
READ, EDIT, RUN, OUTSIDE, PROTECTED, FORBIDDEN = "read", "edit", "run", "outside", "protected", "forbidden"
ALLOWED = {"ask": {READ}, "edits": {READ, EDIT}, "yes": {READ, EDIT, RUN, OUTSIDE}}
SHELL_FILES = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
               ".zshenv", ".zprofile", ".zlogin", ".config/fish/config.fish")
UNREADABLE = (".ssh", ".aws", ".gnupg", ".config/gh", ".netrc", ".docker/config.json", ".kube", ".nanocoder")


class Permissions:
    def __init__(self, mode: str = "ask"):
        if mode not in MODES:  # later changes come from /mode, which offers MODES only
            raise ValueError(f"unknown permission mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.always: set[str] = set()  # keys from Tool.permission, approved for the session

    def check(self, kind: str, key: str) -> str:
        """"allow", "ask" or "deny" for a call of this kind, remembered under key."""
        if kind == FORBIDDEN:
            return "deny"
        return "allow" if kind in ALLOWED[self.mode] or (kind != PROTECTED and key in self.always) else "ask"


def path_kind(path: Path, root: Path, home: Path | None = None) -> tuple[str, str]:
    """What writing this (resolved) path means: (EDIT, "") inside the workspace, else why not."""
    home = (home or Path.home()).resolve()
    if ".git" in (part.lower() for part in path.parts):  # .git/config, a .git file, .GIT on macOS
        return PROTECTED, f"{path} is git's own data (hooks and config there run programs)"
    if path.is_relative_to(home / ".ssh") or path in [home / name for name in SHELL_FILES]:
        return PROTECTED, f"{path} is a shell start-up file or SSH key material"
    if not path.is_relative_to(root):
        return OUTSIDE, f"{path} is outside the workspace {root}"
    return EDIT, ""
