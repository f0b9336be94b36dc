"""What a shell command would do, read the way bash splits it: forbidden, read-only, or ask.

A regex blocklist misses spellings (`/bin/rm -r -f ~`, `sudo env X=1 rm -rf "$HOME"`) and blocks
harmless text (`echo "rm -rf /"`). So the command is split into its simple commands across
; && || | & newlines and subshells, wrappers (sudo, env, timeout, xargs, bash -c, eval...) are
looked through, `cd` is followed, and each simple command's own arguments are judged:
- forbidden: never run, even with --yes (recursive deletion of /, the home folder, a folder
  directly under either, or the workspace or any folder holding it; mkfs; writing onto a disk
  device; fork bombs; recursive chmod/chown of those folders);
- read-only: every command is known to only read, and nothing is redirected into a file;
- ask: everything else, including $(...), backticks and whatever cannot be parsed.
"""
import os
import re
import shlex
from pathlib import Path

FORBIDDEN, READ_ONLY, ASK = "forbidden", "read-only", "ask"
SEPARATORS = frozenset({";", "&&", "||", "|", "|&", "&", ";;", "\n"})
REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<<", "<&", "<>"})
KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done", "esac"})
COMPLEX = frozenset({"for", "case", "select", "function", "coproc"})
# wrapper: its options that take a value (the command it runs comes after its options)
WRAPPERS = {"sudo": "ugpChUrtD", "doas": "uC", "env": "uCS", "nice": "n", "ionice": "cnp", "timeout": "sk",
            "command": "", "exec": "a", "nohup": "", "time": "fo", "stdbuf": "ioe", "xargs": "aEdILnPs",
            "chronic": "", "setsid": ""}
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
READERS = frozenset("""ls cat head tail wc pwd echo printf grep egrep fgrep rg ag tree stat file du df which
    type whereis date whoami id uname printenv basename dirname realpath readlink diff cmp comm
    cut tr nl rev column jq true false test [ md5sum sha1sum sha256sum od hexdump strings tac seq sleep
    cd pushd popd env fd sort find""".split())
# Readers that write a file or run a program when given one of these: a letter is a short option,
# possibly bundled (`sort -ro out`); a word is matched at the start of an argument (`--pre=sh`).
ACTIVE_OPTIONS = {"sort": ("o", "--output", "--compress-program"), "tree": ("o",), "rg": ("--pre",),
                  "fd": ("x", "X", "--exec"), "ag": ("--pager",), "file": ("C", "--compile"),
                  "date": ("-s", "--set"), "find": ("-delete", "-exec", "-ok", "-fprint", "-fls")}
AS_ANOTHER_USER = frozenset({"sudo", "doas", "su", "pkexec"})
GIT_READERS = frozenset("status diff log show blame rev-parse ls-files ls-tree grep shortlog describe "
                        "cat-file reflog whatchanged".split())
SAFE_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero", "/dev/random",
                "/dev/urandom", "/dev/fd/")
WITH_SUBCOMMAND = frozenset("git npm pnpm yarn npx cargo go pip pip3 uv poetry docker kubectl make "
                            "bundle rake dotnet mvn gradle".split())
FORK_BOMB = re.compile(r"(\S+)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&")


def classify(command: str, cwd: Path, home: Path | None = None, root: Path | None = None) -> tuple[str, str]:
    """(FORBIDDEN, why), (READ_ONLY, ""), or (ASK, why)."""
    home, root = Path(home or Path.home()), Path(root or cwd)
    if FORK_BOMB.search(command):
        return FORBIDDEN, "this is a fork bomb"
    parsed = _parse(command, Path(cwd), home)
    if parsed is None:
        return ASK, "the command cannot be parsed"
    for argv, where, writes in parsed:
        why = _destroys(argv, where, home, root) or next(
            (f"it writes onto the device {t}" for t in writes if _is_device(t)), None)
        if why:
            return FORBIDDEN, why
    if re.search(r"\$\(|`|<\(|>\(", command):
        return ASK, "it runs a command substitution"
    for argv, _, writes in parsed:
        if [t for t in writes if not t.startswith(SAFE_DEVICES)]:
            return ASK, "it writes to a file"
        if not _reads_only(argv):
            return ASK, f"it runs `{' '.join(argv[:2])[:60]}`"
    return READ_ONLY, ""


def simple_commands(command: str, cwd: Path | None = None, home: Path | None = None) -> list[list[str]] | None:
    """The argv of each simple command, wrappers looked through; None if it cannot be parsed."""
    parsed = _parse(command, Path(cwd or "/"), Path(home or Path.home()))
    return None if parsed is None else [argv for argv, _, _ in parsed]


def prefix(command: str) -> str | None:
    """What "always" may cover: `pytest`, `git commit`, `python -m pytest` for one plain command;
    None for anything compound, substituted, redirected or wrapped (only its exact text is kept)."""
    if re.search(r"[;&|<>`\n]|\$\(", command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or words[0] in WRAPPERS or words[0] in SHELLS or words[0] in ("eval", "cd"):
        return None
    name = os.path.basename(words[0])
    if name.startswith("python") and words[1:2] == ["-m"] and len(words) > 2:
        return f"{name} -m {words[2]}"
    if name in WITH_SUBCOMMAND and len(words) > 1 and not words[1].startswith("-"):
        return f"{name} {words[1]}"
    return name


def _parse(command: str, cwd: Path, home: Path, depth: int = 0):
    """[(argv, the folder it runs in or None if unknown, files it redirects into)], or None."""
    try:  # newlines separate commands as ; does (bash reads a quoted newline as text: harmless here)
        lexer = shlex.shlex(command.replace("\\\n", " ").replace("\n", ";"), posix=True,
                            punctuation_chars=";&|()<>")
        # Comments are found below: shlex would also start one in the middle of a word (`a#`).
        lexer.whitespace_split, lexer.commenters = True, ""
        tokens = list(lexer) + [";"]
    except ValueError:
        return None
    out, argv, writes, stack, where, i = [], [], [], [], cwd, 0
    fed = []  # what `echo a b |` feeds to a following xargs
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("#") and not argv:  # a comment, up to the end of its line
            while tokens[i] != ";":
                i += 1
            continue
        if token in REDIRECTS:
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            if (">" in token or token == "<>") and not re.fullmatch(r"\d*-?|/dev/(null|stdout|stderr)", target):
                writes.append(_expand(target, where, home) or target)  # 2>&1 names no file
            i += 2
            continue
        if token in SEPARATORS or token in ("(", ")") or (not argv and token in KEYWORDS):
            if argv:
                if os.path.basename(argv[0]) == "xargs":
                    argv = argv + fed  # `echo / | xargs rm -rf` is `rm -rf /`
                fed = argv[1:] if token == "|" and os.path.basename(argv[0]) in ("echo", "printf") else []
                where = _add(out, argv, where, writes, home, depth)
                if where is False:
                    return None
            argv, writes = [], []
            if token == "(":
                stack.append(where)
            elif token == ")" and stack:
                where = stack.pop()
        elif not argv and token in COMPLEX:
            out.append(([token], where, []))  # loops and functions are not followed: they ask
            argv = ["#"]
        elif not (argv == [] and re.fullmatch(r"[A-Za-z_]\w*=.*", token)):  # leading VAR=value
            argv.append(token)
        i += 1
    return out


def _add(out, argv, where, writes, home, depth):
    """Look through wrappers and shells; follow cd. Returns the folder later commands run in."""
    before, argv = argv, _unwrap(argv)
    if not argv:
        return where
    name = os.path.basename(argv[0])
    flag = next((n for n, a in enumerate(argv) if n and re.fullmatch(r"-[a-z]*c[a-z]*", a)), None)
    if name in SHELLS and flag:  # bash -c 'SCRIPT', sh -lc "SCRIPT"
        script = next((a for a in argv[flag + 1:] if not a.startswith("-")), "")
        return _nested(out, script, where, home, depth, argv)
    if name == "eval":
        return _nested(out, " ".join(argv[1:]), where, home, depth, argv)
    if os.path.basename(before[0]) in AS_ANOTHER_USER:
        out.append((before[:1], where, []))  # what another user runs is never merely read: it asks
    out.append((argv, where, writes))
    if name in ("cd", "pushd"):
        target = next((a for a in argv[1:] if not a.startswith("-")), "~")
        path = _expand(target, where, home)
        return Path(path) if path else None  # `cd -` or `cd $X`: later relative paths are unknown
    return where


def _nested(out, script, where, home, depth, argv):
    if depth > 3:
        return False
    inner = _parse(script, where, home, depth + 1)
    if inner is None:
        return False
    out.extend(inner)
    out.append((argv[:1], where, []))  # the shell itself asks; what it runs is judged above
    return where


def _unwrap(argv: list[str]) -> list[str]:
    """sudo -u root env X=1 nice -n 5 timeout 10 rm -rf / -> rm -rf /."""
    while argv and os.path.basename(argv[0]) in WRAPPERS:
        name, rest = os.path.basename(argv[0]), argv[1:]
        valued = WRAPPERS[name]
        while rest and (rest[0].startswith("-") or (name == "env" and "=" in rest[0])):
            option = rest.pop(0)
            if option == "--":
                break
            if name == "command" and option in ("-v", "-V"):
                return ["type"] + rest  # a lookup, not a run
            if option.startswith("-") and not option.startswith("--") and option[-1] in valued and rest:
                rest.pop(0)  # the option's value
        if name == "timeout" and rest:
            rest.pop(0)  # the duration
        argv = rest
    return argv


def _expand(word: str, where: Path | None, home: Path) -> str:
    """The absolute, normalised path a word names, or "" when it depends on what we cannot know."""
    word = re.sub(r"^(\$HOME|\$\{HOME\}|~)(?=/|$)", str(home), word)
    word = re.sub(r"^(\$PWD|\$\{PWD\})(?=/|$)", str(where) if where else "$PWD", word)
    if "$" in word or word.startswith("~"):
        return ""
    if not word.startswith("/"):
        if where is None:
            return ""
        word = f"{where}/{word}"
    word = re.sub(r"(/\*)+$", "", word) or "/"  # `dir/*` takes everything in dir
    return os.path.normpath(word) if word != "/" else "/"


def _critical(path: str, home: Path, root: Path, workspace_too: bool) -> str | None:
    if not path:
        return None
    p = Path(path)
    if p == Path("/"):
        return "/, the whole system"
    if p == home:
        return f"{p}, your home folder"
    if root != p and root.is_relative_to(p):
        return f"{p}, which holds the workspace {root}"
    if p.parent == Path("/") or p.parent == home:
        return f"{p}, a folder directly under {p.parent}"
    if root == p and workspace_too:
        return f"{p}, the whole workspace"
    return None


def _destroys(argv, where, home, root) -> str | None:
    name, args = os.path.basename(argv[0]), argv[1:]
    if name.startswith("mkfs") or name in ("mke2fs", "wipefs"):
        return f"`{name}` erases a disk"
    if name == "dd":
        target = next((a[3:] for a in args if a.startswith("of=")), "")
        return f"`dd` would overwrite the device {target}" if _is_device(target) else None
    options, operands = _split(args)
    short = "".join(o[1:] for o in options if not o.startswith("--"))
    targets = []
    if name == "rm" and ("r" in short.lower() or "--recursive" in options):
        targets = operands
    elif name in ("chmod", "chown", "chgrp") and ("R" in short or "--recursive" in options):
        targets = operands[1:]
    elif name == "rsync" and any(o.startswith("--delete") for o in options):
        targets = operands[-1:]
    elif name == "find" and any(a in ("-delete", "-exec", "-execdir", "-ok", "-okdir") for a in args):
        starts = [a for a in args[:next((i for i, a in enumerate(args) if a[:1] in "-(!"), len(args))]]
        targets = starts or ["."]
    elif name in ("shred", "srm") and ("r" in short or "--recursive" in options):
        targets = operands
    for target in targets:  # `find . -name x -delete` and `chmod -R` in the workspace only ask
        why = _critical(_expand(target, where, home), home, root, workspace_too=name in ("rm", "shred", "srm"))
        if why:
            verb = {"rm": "delete", "find": "delete in", "rsync": "delete in"}.get(name, "change everything in")
            return f"`{name}` would recursively {verb} {why}"
    return None


def _split(args):
    """Options and operands; after `--` everything is an operand."""
    if "--" in args:
        cut = args.index("--")
        return [a for a in args[:cut] if a.startswith("-")], [a for a in args[:cut] if not a.startswith("-")] + args[cut + 1:]
    return [a for a in args if a.startswith("-") and a != "-"], [a for a in args if not a.startswith("-") or a == "-"]


def _is_device(path: str) -> bool:
    return path.startswith("/dev/") and not path.startswith(SAFE_DEVICES)


def _reads_only(argv) -> bool:
    name, args = os.path.basename(argv[0]), argv[1:]
    if name == "sed":
        script = [a for a in args if not a.startswith("-")][:1]
        return not any(a.startswith(("-i", "--in-place")) for a in args) and bool(
            script and re.fullmatch(r"\s*\d*(,\s*(\d+|\$))?\s*p\s*", script[0]))
    if name == "uniq":
        return len([a for a in args if not a.startswith("-")]) <= 1
    if name == "git":
        return _git_reads_only(args)
    return name in READERS and not _active(ACTIVE_OPTIONS.get(name, ()), args)


def _active(options, args) -> bool:
    words = tuple(o for o in options if o.startswith("-"))
    letters = {o for o in options if not o.startswith("-")}
    return any(a.startswith(words) or (a[:1] == "-" and a[1:2] != "-" and letters & set(a[1:])) for a in args)


def _git_reads_only(args) -> bool:
    # -c sets any config for this run, and some config runs programs (core.fsmonitor): it asks
    while args and args[0] in ("-C", "--no-pager", "-P", "--git-dir", "--work-tree"):
        args = args[1:] if args[0] in ("--no-pager", "-P") else args[2:]
    if not args:
        return False
    sub, rest = args[0], args[1:]
    if sub in GIT_READERS:  # `git grep -O` opens a program on the files found
        return not _active(("--output", "-O", "--open-files-in-pager"), rest)
    if sub == "stash":
        return rest[:1] in (["list"], ["show"])
    listing = {"branch": {"-a", "-r", "-v", "-vv", "--list", "--show-current", "--all", "--remotes"},
               "tag": {"-l", "--list", "-n"}, "remote": {"-v", "--verbose"}}
    if sub in listing:
        return all(a in listing[sub] for a in rest)
    if sub == "config":
        return any(a in ("--get", "--get-all", "--list", "-l", "--get-regexp") for a in rest)
    return False
