"""What a shell command would do, read the way bash reads it: forbidden, read-only, or ask. A regex blocklist
misses spellings (`/bin/rm -r -f ~`) and blocks harmless text (`echo "rm -rf /"`), so the command is split as
bash splits it, wrappers (sudo, env, xargs, bash -c...) looked through, `cd` followed. Forbidden, even with
--yes: what would destroy the system, home or workspace; read-only: readers that write and run nothing."""
import fnmatch
import os
import re
from pathlib import Path

FORBIDDEN, READ_ONLY, ASK = "forbidden", "read-only", "ask"
SEPARATORS = frozenset({";", "&&", "||", "|", "|&", "&", ";;", "\n", "(", ")"})
REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<-", "<<<", "<&", "<>"})
# One token as bash reads it: blanks, a comment (only where a word may start), a redirection
# (its fd, `2>` or `{fd}<`, dropped), another operator, or a word with its quotes
TOKEN = re.compile(r"""[ \t]+ | \\\n | \#[^\n]*
    | (?P<fd>\d+|\{\w+\})? (?P<redirect><<<|<<-|<<|<>|<&|>&|>>|>\||&>>|&>|<|>)
    | (?P<op>\(\(|;;|&&|\|\||\|&|[;&|()\n])
    | (?P<word>(?:\\.|\$'(?:[^'\\]|\\.)*'|'[^']*'|\$?"(?:[^"\\]|\\.)*"|[^ \t\n;&|()<>'"\\])+)""", re.S | re.X)
# A word's parts: \x, '...', $'...', "..." and unquoted text
PART = re.compile(r"""\\\n | \\(.) | '([^']*)' | \$'((?:[^'\\]|\\.)*)' | \$?"((?:[^"\\]|\\.)*)"
    | ((?:[^\\'"$]|\$(?!['"]))+)""", re.S | re.X)
LINE, CONTINUED_LINE = re.compile(r"[^\n]*"), re.compile(r"(?:\\.|[^\\\n])*", re.S)
KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done",
                      "esac"})
ASSIGNMENT = re.compile(r"[A-Za-z_]\w*(\[[^]]*\])?\+?=.*", re.S)
HARMLESS_VARIABLE = re.compile(r"(LANG|LC_\w+|TZ|NO_COLOR|FORCE_COLOR|TERM|COLUMNS|LINES)=")
# wrapper: its short options that take a value (timeout alone has a word, the duration, before the command)
WRAPPERS = dict(sudo="ugpChUrtD", doas="uC", env="ua", nice="n", ionice="cnp", timeout="sk", exec="a",
                command="", nohup="", time="f", stdbuf="ioe", xargs="aEdILnPs", chronic="", setsid="",
                busybox="", coproc="")
# Long wrapper options whose value may be the next word (xargs --max-lines takes it only after =)
VALUED_LONG = frozenset("--signal --kill-after --adjustment --user --group --input --output --error "
                        "--max-args --max-procs --delimiter --arg-file --unset --format".split())
# Wrapper options (as ACTIVE_OPTIONS spells them) that change what runs or write a file: the
# wrapper is then judged as itself, and asks
OPAQUE = {"env": ("S", "C", "--split-string", "--chdir"), "time": ("o", "a", "--output", "--append"),
          "sudo": ("s", "i", "e", "--shell", "--login", "--edit")}
AS_ANOTHER_USER = frozenset({"sudo", "doas", "su", "pkexec"})
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
READERS = frozenset("""ls cat head tail wc pwd echo printf grep egrep fgrep rg ag tree stat file du df which
    type whereis date whoami id uname printenv basename dirname realpath readlink diff cmp comm
    cut tr nl rev column jq true false test [ md5sum sha1sum sha256sum od hexdump strings tac seq sleep
    cd pushd popd fd sort find ps free nproc""".split())
SYSTEM_BIN = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/")
# Readers that write a file or run a program when given one of these: a letter is a short option,
# even bundled (`sort -ro out`); `--word` also matches its abbreviations (`--outp`); `-word` an
# argument it begins (`-execdir`).
ACTIVE_OPTIONS = {"sort": ("o", "--output", "--compress-program"), "tree": ("o", "R"), "rg": ("--pre",),
                  "fd": ("x", "X", "--exec", "--exec-batch"), "ag": ("--pager",), "file": ("C", "--compile"),
                  "date": ("s", "--set"), "find": ("-delete", "-exec", "-ok", "-fprint", "-fls"),
                  "test": ("-v",), "[": ("-v",), "printf": ("-v",)}
# Readers that write nothing and run nothing whatever their arguments: they alone may be given
# words bash expands (`uniq *.txt` overwrites its second file; `sort *` may meet `--output=x`)
ANY_ARGUMENTS = READERS - set(ACTIVE_OPTIONS)
GIT_READERS = frozenset("status diff log show blame rev-parse ls-files ls-tree grep shortlog describe "
                        "cat-file whatchanged rev-list show-ref".split())
SAFE_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero", "/dev/random",
                "/dev/urandom", "/dev/full", "/dev/fd/", "/dev/shm/", "/dev/pts/")
DISK_ERASERS = ("mkfs", "mke2fs", "mkswap", "wipefs", "blkdiscard")
DELETERS = frozenset({"rm", "shred", "srm", "unlink", "rmdir"})
WITH_SUBCOMMAND = frozenset("git npm pnpm yarn npx cargo go pip pip3 uv poetry docker kubectl make "
                            "bundle rake dotnet mvn gradle".split())
# A fork bomb is a function that calls itself in the background or into a pipe before any `}`:
# :(){ :|:& };: and its spellings. Found in one pass (a single regex for it took quadratic time): the
# definitions `name() {` or `function name {`, the calls `name &` or `name |` that start a command, and `}`.
# Each name starts where no name character is just before it, so no match starts inside a long word.
BOMB_PARTS = re.compile(r"(?<![\w:.-])(?:function\s+(?P<fn>[\w:.-]+)|(?P<def>[\w:.-]+)\s*\(\s*\))\s*\{"
                        r"|(?:(?<=[;|&{])|^)\s*(?P<call>[\w:.-]+)\s*[&|]|(?P<close>\})")
# $(...), `...`, <(...), $'...', $[...], any ${...} but a plain ${NAME}; BRACES: {a,b} and {1..9}
EXPANSION = re.compile(r"\$\(|`|<\(|>\(|\$['\"\[]|\$\{(?!\w+\})")
BRACES = re.compile(r"\{[^{}\s]*\}")
# Longer commands are not analysed (they ask): the analysis is linear, but a 4 MB command still takes
# seconds in Python, and none of the commands a model writes by hand comes near it.
MAX_ANALYSED = 100_000


def classify(command: str, cwd: Path, home: Path | None = None, root: Path | None = None) -> tuple[str, str]:
    """(FORBIDDEN, why), (READ_ONLY, ""), or (ASK, why)."""
    home = Path(os.path.realpath(home or Path.home()))
    root, cwd = Path(os.path.realpath(root or cwd)), Path(cwd)
    if len(command) > MAX_ANALYSED:
        return ASK, f"it is too long to analyse ({len(command):,} characters; over {MAX_ANALYSED:,})"
    if fork_bomb(command):
        return FORBIDDEN, "this is a fork bomb"
    parsed = _parse(command, cwd, home)
    for argv, where, writes in parsed:
        if why := _destroys(argv, where, writes, home, root):
            return FORBIDDEN, why
    if expands(command):
        return ASK, "it runs a command substitution or expands words"
    for argv, _, writes in parsed:  # /dev/stdout and /dev/fd/N write too: they reopen files `N<f` opened
        reasons = [(argv == ["?"], "the command cannot be parsed"),
                   (set(writes) - {"/dev/null"}, "it writes to a file"),
                   (ASSIGNMENT.fullmatch(argv[0]), f"it sets {argv[0].split('=')[0]}"),
                   (not _reads_only(argv), f"it runs `{' '.join(argv[:2])[:60]}`")]
        if why := next((why for hit, why in reasons if hit), None):
            return ASK, why
    return READ_ONLY, ""


def prefix(command: str, cwd: Path, root: Path) -> str | None:
    """What "always" may cover: `pytest`, `git commit`, `python -m pytest`, `python3 app.py`; None if
    compound, expanded, run by a shell or an opaque wrapper, or writing out of the workspace (a redirection
    into it changes nothing: the sandbox decides where a command may write)."""
    parsed = _parse(command, cwd, Path(os.path.realpath(Path.home())))
    if len(parsed) != 1 or expands(command) or not all(
            w == "/dev/null" or Path(w).is_relative_to(root) for w in parsed[0][2]):
        return None
    words = parsed[0][0]
    if ASSIGNMENT.fullmatch(words[0]) or words[0] in {*WRAPPERS, *SHELLS, "eval", "cd", ">", "?"}:
        return None
    name = os.path.basename(words[0])
    if name.startswith("python") and words[1:2] == ["-m"] and len(words) > 2:
        return f"{name} -m {words[2]}"
    if name.startswith(("python", "node", "ruby", "perl")):  # one script, never any code (`-c`, `-e`)
        script = words[1] if len(words) > 1 else "-"
        return None if script.startswith("-") or isinstance(script, Unseen) else f"{name} {script}"
    if name in WITH_SUBCOMMAND and len(words) > 1 and not words[1].startswith("-"):
        return f"{name} {words[1]}"
    return name


def fork_bomb(command: str) -> bool:
    defined = set()  # the functions whose body the scan is in: defined since the last `}`
    for m in BOMB_PARTS.finditer(command):
        if m["close"]:
            defined.clear()
        elif m["call"]:
            if m["call"] in defined:
                return True
        else:
            defined.add(m["fn"] or m["def"])
    return False


def expands(command: str) -> bool:
    return bool(EXPANSION.search(command)) or any(
        "," in m[0] or ".." in m[0] for m in BRACES.finditer(command))


def _parse(command: str, cwd: Path, home: Path, depth: int = 0):
    """[(argv, its folder or None if unknown, files it writes)]; ["?"] just where bash's reading is lost."""
    tokens = _tokens(command) + [(";", "")]
    # fed: what `echo a b |` gives a following xargs
    out, argv, writes, stack, fed, where = [], [], [], [], [], cwd
    for i, (op, raw) in enumerate(tokens):
        if op in REDIRECTS and not tokens[i + 1][0]:
            target = _word(tokens[i + 1][1])
            if (">" in op or op == "<>") and not (op.endswith("&") and re.fullmatch(r"\d*-?", target)):
                writes.append(_expand(target, where, home) or f"an unknown file {target}")  # 2>&1 names none
        elif i and tokens[i - 1][0] in REDIRECTS and not op:
            continue  # the redirection's target, taken above
        elif op or (not argv and raw in KEYWORDS):
            if argv or writes:  # `> f` and `{ ...; } > f` write with no command of their own
                if argv and os.path.basename(argv[0]) == "xargs":  # `echo / | xargs rm -rf`
                    argv += fed
                fed = (argv[1:] if op == "|" and argv and os.path.basename(argv[0]) in ("echo", "printf")
                       else [])
                where = _add(out, argv or [">"], where, writes, home, depth)
            if op and op not in SEPARATORS:  # `((`, `> ;`, or where _tokens stopped
                out.append((["?"], where, []))
            argv, writes = [], []
            if op == "(":
                stack.append(where)
            elif op == ")" and stack:
                where = stack.pop()
        else:  # `for`, `case`, `function` are not followed: they are no readers, so they ask
            argv.append(_word(raw))
    return out


def _tokens(command: str) -> list[tuple[str, str]]:
    """bash's tokens, (operator, "") or ("", the raw word), heredocs skipped; ("?", "") if unreadable."""
    tokens, bodies, pos = [], [], 0
    while pos < len(command):
        m = TOKEN.match(command, pos)
        if not m:  # bash runs the lines before an open quote, then stops
            return tokens + [("?", "")]
        pos, op, word = m.end(), m["redirect"] or m["op"] or "", m["word"] or ""
        if m["fd"] and tokens and tokens[-1][0] in REDIRECTS:  # `2>&1>f`: 1 is the first one's target
            pos, op, word = m.start("redirect"), "", m["fd"]
        if word and tokens and tokens[-1][0] in ("<<", "<<-"):  # its delimiter
            if re.search(r"[$`]", word):
                return tokens + [("?", "")]
            bodies.append((_word(word), tokens[-1][0] == "<<-", bool(re.search(r"[\\'\"]", word))))
        if op == "\n":  # the bodies start on the next line; unquoted, a line ending in `\` goes on
            for delimiter, dash, quoted in bodies:
                while pos < len(command):
                    line = (LINE if quoted else CONTINUED_LINE).match(command, pos)
                    pos = line.end() + 1
                    if line[0].replace("\\\n", "").lstrip("\t" if dash else "") == delimiter:
                        break
            bodies = []
        if op or word:
            tokens.append((op, word))
    return tokens


def _word(raw: str) -> str:
    """A word after quote removal; Unseen when bash expands it into words we cannot see."""
    parts = PART.findall(raw)
    value = "".join(e + s + a + re.sub(r'\\(?:\n|([$`"\\]))', r"\1", d) + p for e, s, a, d, p in parts)
    unseen = re.search(r"[*?[$]", "".join(p for *_, p in parts)) or "$" in "".join(d for *_, d, _ in parts)
    return Unseen(value) if unseen else value


class Unseen(str):
    """A word with an unquoted *, ? or [, or a $: the words it becomes may look like options."""


def _add(out, argv, where, writes, home, depth):
    """Look through wrappers and shells; follow cd. Returns the folder later commands run in."""
    argv, passed = _unwrap(argv)
    name = os.path.basename(argv[0]) if argv else ""
    # what was looked through may itself make the command more than a read: each such word asks
    out.extend(([w], where, []) for w in passed
               if (ASSIGNMENT.fullmatch(w) and not HARMLESS_VARIABLE.match(w))
               or w in AS_ANOTHER_USER or (w == "xargs" and name not in ANY_ARGUMENTS))
    if not argv:  # `exec > f`, `sudo -s`: the wrapper itself is the command; a bare `env` only prints
        out.append((["printenv"] if passed == ["env"] else passed[-1:] or [">"], where, writes))
        return where
    flag = next((n for n, a in enumerate(argv) if n and re.fullmatch(r"-[a-z]*c[a-z]*", a)), None)
    if name == "eval" or (name in SHELLS and flag):  # eval WORDS, bash -c 'SCRIPT', sh -lc "SCRIPT"
        script = (" ".join(argv[1:]) if name == "eval"
                  else next((a for a in argv[flag + 1:] if a[:1] != "-"), ""))
        out.extend(_parse(script, where, home, depth + 1) if depth <= 3 else [(["?"], where, [])])
        argv = argv[:1]  # the shell itself asks; what it runs is judged above
    out.append((argv, where, writes))
    if name in ("cd", "pushd"):
        path = _expand(next((a for a in argv[1:] if not a.startswith("-")), "~"), where, home)
        # `cd -` or `cd $X`: later relative paths are unknown; as they are past PATH_MAX, where cd fails
        # (and `cd a; cd a; ...` would otherwise grow a path as long as the command)
        return Path(path) if path and len(path) < 4096 else None
    return where


def _unwrap(argv: list[str]) -> tuple[list[str], list[str]]:
    """`sudo -u root env X=1 nice -n 5 rm -rf /` -> (`rm -rf /`, wrappers and variables looked through)."""
    passed, start = [], 0  # argv[start:] is what is left: indexes, not copies, keep this linear
    while start < len(argv):
        name = os.path.basename(argv[start])
        if ASSIGNMENT.fullmatch(argv[start]):  # X=1 cmd, or env X=1 cmd
            passed.append(argv[start])
            start += 1
            continue
        if name not in WRAPPERS:
            break
        valued, skip, rest = WRAPPERS[name], int(name == "timeout"), start + 1
        while rest < len(argv) and argv[rest].startswith("-"):
            option, rest = argv[rest], rest + 1
            if option == "--":
                break
            if _active(OPAQUE.get(name, ()), [option]):
                return argv[start:], passed
            if name == "command" and option in ("-v", "-V"):
                return ["type"] + argv[rest:], passed  # a lookup, not a run
            if rest < len(argv) and (option in VALUED_LONG or (option[1:2] != "-" and option[-1] in valued)):
                rest += 1  # the option's value
        if any(isinstance(w, Unseen) for w in argv[start:rest + skip]):
            return argv[start:], passed  # `timeout * ls`: what runs would depend on file names
        passed.append(name)
        start = rest + skip
    return argv[start:], passed


def _expand(word: str, where: Path | None, home: Path) -> str:
    """The absolute, normalised path a word names, or "" when it depends on what we cannot know."""
    word = re.sub(r"^(\$HOME|\$\{HOME(:[?-][^}]*|%/*)?\}|~)(?=/|$)", lambda _: str(home), word)
    word = re.sub(r"^(\$PWD|\$\{PWD\}|~\+)(?=/|$)", lambda _: str(where) if where else "$PWD", word)
    word = re.sub(r"^~[\w.-]+(?=/|$)", lambda m: str(home) if m[0] == f"~{home.name}"
                  else os.path.expanduser(m[0]), word)  # ~user; an unknown user stays as it is
    if "$" in word or word.startswith("~") or (where is None and not word.startswith("/")):
        return ""
    word = re.sub(r"(/\*)+$", "", os.path.join(where or "/", word)) or "/"  # `dir/*` takes everything in dir
    return re.sub(r"^/+", "/", os.path.normpath(word))  # `//usr` is /usr


def _critical(path: str, home: Path, root: Path, workspace_too: bool) -> str | None:
    # a pattern is judged by the folders it could name (a path with no *, ? or [ matches only itself)
    path = next((str(p) for p in (Path("/"), home, *root.parents, root) if fnmatch.fnmatchcase(str(p), path)),
                path)
    p = Path(os.path.realpath(path))  # as home and root are: a link to either is either
    reasons = [(p == Path("/"), "the whole system"), (p == home, "your home folder"),
               (root != p and root.is_relative_to(p), f"which holds the workspace {root}"),
               (p.parent in (Path("/"), home), f"a folder directly under {p.parent}"),
               (root == p and workspace_too, "the whole workspace")]
    return next((f"{p}, {why}" for hit, why in reasons if hit), None)


def _destroys(argv, where, writes, home, root) -> str | None:
    name, args = os.path.basename(argv[0]), argv[1:]
    if name.startswith(DISK_ERASERS):
        return f"`{name}` erases a disk"
    options, operands = _split(args)
    written = {"dd": [a[3:] for a in args if a.startswith("of=")], "tee": operands, "cp": operands[-1:],
               "mv": operands[-1:], "install": operands[-1:]}.get(name, [])
    if device := next((d for d in written if _is_device(d)), None):
        return f"`{name}` would overwrite the device {device}"
    verb, targets = "delete in", []
    if name in ("rm", "shred", "srm") and _active(("r", "R", "--recursive"), options):
        verb, targets = "delete", operands
    elif name in ("chmod", "chown", "chgrp") and _active(("R", "--recursive"), options):
        verb = "change everything in"  # `-r` is a mode, `-w` too
        targets = operands + [o for o in options if re.fullmatch(r"-[ugoa]*[rwxXst]+", o)]
    elif name == "rsync" and any(o.startswith("--del") for o in options):
        targets = operands[-1:]
    elif name == "find" and ("-delete" in args or any(  # -exec rm, -execdir shred, -ok unlink...
            a.startswith(("-exec", "-ok")) and os.path.basename(b) in DELETERS
            for a, b in zip(args, args[1:]))):
        first = 0
        while first < len(args) and re.fullmatch(r"-[HLP]|-O\d*|-D", args[first]):  # options, then paths
            first += 2 if args[first] == "-D" else 1
        targets = args[first:next((i for i, a in enumerate(args) if i >= first and a[:1] in "-(!"),
                                  len(args))] or ["."]
    for path in dict.fromkeys(filter(None, (_expand(t, where, home) for t in targets))):  # those we can name
        # `find . -name x -delete` and `chmod -R` in the workspace only ask
        if why := _critical(path, home, root, workspace_too=verb == "delete"):
            return f"`{name}` would recursively {verb} {why}"
    return next((f"it writes onto the device {t}" for t in writes if _is_device(t)), None)


def _split(args):
    """Options and operands; after `--` everything is an operand."""
    cut = args.index("--") if "--" in args else len(args)
    options = [a for a in args[:cut] if a.startswith("-") and a != "-"]
    return options, [a for a in args[:cut] if not (a.startswith("-") and a != "-")] + args[cut + 1:]


def _is_device(path: str) -> bool:
    # `/dev/shm/../sda` is /dev/sda; /dev/shm itself holds files
    path = re.sub(r"^/+", "/", os.path.normpath(path))
    return path.startswith("/dev/") and not (path + "/").startswith(SAFE_DEVICES)


def _reads_only(argv) -> bool:
    name, args = os.path.basename(argv[0]), argv[1:]
    # `./ls` is the workspace's
    if ("/" in argv[0] and not os.path.normpath(argv[0]).startswith(SYSTEM_BIN)) or (
            name not in ANY_ARGUMENTS and any(isinstance(a, Unseen) for a in args)):
        return False
    options, operands = _split(args)
    if name == "sed":  # `sed -n 5p`, `sed -n '1,20p' file`, nothing else
        return bool(operands and re.fullmatch(r"\s*\d*(,\s*(\d+|\$))?\s*p\s*", operands[0])) and all(
            re.fullmatch(r"-[nErsz]+|--(quiet|silent|regexp-extended|separate|null-data)", o)
            for o in options)
    if name == "uniq":  # `uniq IN OUT` writes OUT
        return len(operands) <= 1
    if name != "git":
        return name in READERS and not _active(ACTIVE_OPTIONS.get(name, ()), args)
    # git: -c sets any config for this run, and some config runs programs (core.fsmonitor): it asks
    first = 0
    while first < len(args) and args[first] in ("-C", "--no-pager", "-P", "--git-dir", "--work-tree"):
        first += 1 if args[first] in ("--no-pager", "-P") else 2
    sub, *rest = args[first:] or [""]  # no subcommand: it reads nothing
    options, operands = _split(rest)
    # options that write a file or run a program: `git grep -O` opens the files found in one
    if _active(("--output", "--ext-diff") + (("O", "--open-files-in-pager") if sub == "grep" else ()), rest):
        return False
    # when the others read only (every rule is evaluated, sub's is the answer): `git reflog -10` is
    # `git reflog show -10` (expire and delete change it); `git tag -l 'v*'` lists, `git tag v1` makes one;
    # `git config user.name` reads, `git config user.name x` writes
    return sub in GIT_READERS or {
        "stash": rest[:1] in (["list"], ["show"]),
        "reflog": rest[:1] in ([], ["show"]) or rest[0].startswith("-"),
        "tag": all(o in ("-l", "--list", "-n") for o in options) and (bool(options) or not operands),
        "branch": all(a in {"-a", "-r", "-v", "-vv", "--list", "--show-current", "--all", "--remotes"}
                      for a in rest),
        "remote": all(a in ("-v", "--verbose") for a in rest) or rest[:1] == ["get-url"],
        "config": "--" not in rest and (
            bool({"--get", "--get-all", "--list", "-l", "--get-regexp"} & set(rest))
            or (len(rest) == 1 and rest[0][:1] != "-")),
    }.get(sub, False)


def _active(options, args) -> bool:
    # an argument `--word` matches a long option it abbreviates, as GNU tools accept (`--rec`); else an option
    # `-word` matches an argument it begins (`-execdir`), a letter a short option even bundled (`-ro`)
    return any((len(a.split("=")[0]) > 2 and o.startswith(a.split("=")[0])) if a.startswith("--")
               else a.startswith(o) if o.startswith("-") else (a[:1] == "-" and o in a[1:])
               for a in args for o in options)
