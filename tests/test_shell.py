"""Command analysis: destructive spellings are forbidden, look-alikes are not, reading never asks."""
import os
import subprocess
from pathlib import Path

import pytest

from nanocoder.tools.shell import ASK, FORBIDDEN, READ_ONLY, classify, prefix

HOME = Path("/home/dev")
WORK = HOME / "src" / "app"  # the workspace: rm -rf of it, or of anything holding it, is forbidden

DESTRUCTIVE = [
    "rm -rf /", "rm -fr /", "rm -Rf /", "rm -r -f /", "rm -f -r /", "rm --recursive --force /", "rm -r /",
    "rm --recursive /", "rm -rf -- /", "/bin/rm -rf /", "/usr/bin/rm -rf /*", "sudo rm -rf /",
    "sudo -u root rm -rf /", "sudo -E env FOO=1 rm -rf /", "env FOO=1 rm -rf ~", "command rm -rf /",
    "nohup rm -rf / &", "nice -n 5 rm -rf /usr", "timeout 5 rm -rf /etc", "time rm -rf /var",
    "rm -rf ~", "rm -rf ~/", "rm -rf ~/*", "rm -rf $HOME", "rm -rf ${HOME}", 'rm -rf "$HOME"', "rm -rf '/'",
    'rm -rf "$HOME/"', "rm -rf ~/src", "rm -rf ~/.ssh", "rm -rf ..", "rm -rf ../..", "rm -rf .", "rm -rf *",
    "rm -rf ./", f"rm -rf {WORK}", "cd / && rm -rf *", "cd ~; rm -rf .", "cd .. && rm -rf app",
    "ls && rm -rf /", "echo hi; rm -rf ~", "true || sudo rm -rf /", "cd x\nrm -rf /", "(cd /tmp; rm -rf ~)",
    "echo a#; rm -rf /", "bash -c 'rm -rf /'", 'sh -c "rm -rf ~"', "bash -lc 'cd / && rm -rf *'",
    "eval rm -rf /", "eval 'rm -rf ~'", "echo / | xargs rm -rf", "find / -delete", "find ~ -delete",
    "find / -name '*.log' -delete", "find ~ -exec rm -rf {} +", "find /etc -execdir rm {} ;",
    "rsync -a --delete empty/ ~/", "rsync -a --delete-after x/ /", "chmod -R 777 /", "chmod -R 000 ~",
    "chown -R me /", "chgrp -R staff /usr", "mkfs.ext4 /dev/sda1", "mkfs -t ext4 /dev/sdb", "mke2fs /dev/sdb1",
    "dd if=/dev/zero of=/dev/sda bs=1M", "cat image.iso > /dev/sdb", ":(){ :|:& };:", "bomb(){ bomb|bomb& };bomb",
    # found by a red-team review: line continuations read both ways, ~user, //, ${HOME:?}, globs,
    # abbreviated long options, find's leading options, long wrapper options, more devices and bombs
    "echo \\\\\nrm -rf ~", "# note \\\nrm -rf ~", "rm -rf ~dev", "rm -rf ~+", "rm -rf //home/dev", "rm -rf //usr",
    "rm -rf ${HOME:?}", "rm -rf ${HOME%/}", "rm -rf /home/de?", "rm -rf /h*/dev", "rm --rec ~", "rm --r ~",
    "find -L / -delete", "find -D tree ~ -delete", "timeout --signal KILL 5 rm -rf /", "nice --adjustment 5 rm -rf /",
    "busybox rm -rf /", "rsync -a --del empty/ ~/", "chmod -R -w ~", "chmod --rec 000 ~", "dd if=/dev/zero of=//dev/sda",
    "cat x > //dev/sda", "cp image.iso /dev/sda", "tee /dev/sda < x", "mkswap /dev/sda1", "blkdiscard /dev/sda",
    "function f { f | f & }; f", "x(){ x & x; }; x", "rm $'-rf' ~", "ls # it's\nrm -rf ~",
    # a third review: a quote in a here-document's body, `#` inside a word
    "cat <<EOF\necho it's\nEOF\nrm -rf ~ # '", "cat <<-EOF\n\techo it's\n\tEOF\nrm -rf ~ # '",
    "cat <<'EOF'\necho it's\nEOF\nrm -rf ~ # '", "cat <<A <<\"B\"\nA\necho it's\nB\nrm -rf ~ # '",
    "echo a\\ #; rm -rf ~", "echo a\\\n#; rm -rf ~",
    # bash runs the lines before one it cannot read; `((` is arithmetic
    "rm -rf ~\necho '", "((1))\nrm -rf ~", "coproc rm -rf ~",
    # the paths dd, tee, cp and mv write to are normalised before the device check, as redirections' are
    "dd if=/dev/zero of=/dev/shm/../sda", "tee /dev/fd/../sda", "cp x /dev/shm/../sda", "mv x /dev/pts/../../dev/sdb",
]
BENIGN = [
    'echo "rm -rf /"', "echo 'rm -rf ~'", 'grep -r "rm -rf" .', "grep -rn 'rm -rf /' docs", "rm -rf ./build",
    "rm -rf build dist", "rm -rf build/", "rm -rf node_modules", "rm -rf ./src/__pycache__", "rm -f /tmp/x.txt",
    "rm -r ~/src/app/tmp", f"rm -rf {WORK}/build", "git rm -r --cached x", "docker rm -f web", "git rm -rf old",
    "find . -name '*.pyc' -delete", "find . -type d -name __pycache__ -exec rm -rf {} +", "ls /", "ls -la ~",
    "cat ~/.bashrc", "printf '%s\\n' 'rm -rf ~'", "# rm -rf /", "chmod -R u+w ./build", "chmod 644 ~/notes",
    "dd if=a of=b", "dd if=/dev/zero of=/dev/null count=1", "cd /tmp && rm -rf x", "cd build && rm -rf *",
    'git commit -m "rm -rf ~"', "echo rm -rf / > notes.txt", "man rm", "rsync -a src/ backup/",
    "rsync -a --delete src/ ./mirror/", "python -c 'print(\"rm -rf /\")'", "alias rmrf='rm -rf'",
    "find ~ -name '*.md' -exec grep -l TODO {} +", "find / -name 'libssl*' -exec ls -l {} ;", "echo x > /dev/shm/cache",
    "dd if=/dev/zero of=/dev/shm/test bs=1M count=1",
    "git commit -F - <<'EOF'\nremove the rm -rf / example\nEOF", "cp /dev/sda disk.img", "cat /dev/sda | head -c 512",
    "cat <<EOF\nls \\\nEOF\nrm -rf ~\nEOF",  # bash joins `\` + newline in the body: rm is text
    "cp x /dev/shm/", "cp x /dev/shm", "tee /dev/shm/./log",  # a folder that holds files, not a device
]
READ_ONLY_COMMANDS = [
    "ls -la", "ls", "pwd", "git status", "git diff HEAD~1", "git log --oneline | head", "git show HEAD:README.md",
    "git -C sub diff", "git branch", "git branch -a", "git remote -v", "git config --get user.name",
    "cat a.txt | grep foo | wc -l", "find . -name '*.py'", "grep -rn TODO src", "rg -n 'def main' .",
    "head -50 app.py", "tail -n 20 log.txt", "wc -l *.py", "tree -L 2", "du -sh .", "stat setup.py",
    "sed -n '1,20p' f", "ls 2>/dev/null", "ls -la 2>&1 | head", "echo done", "which python", "diff a b",
    "sort names.txt | uniq -c", "echo x | xargs grep foo", "cd src && ls", "git stash list", "command -v python3",
    "fd -e py", "date -u +%F", "sort -rn f", "git grep -n foo", "grep -n '#include' f.c", "ls # it's here",
    "LANG=C sort f", "/usr/bin/grep x f", "env | grep PATH", "git config user.name", "git tag -l 'v*'",
    "git reflog -10", "git remote get-url origin", "git rev-list --count HEAD", "git log -SOpen", "ps aux",
    "rg --pre-glob '*.gz' x", "find -L . -name x", "git reflog", "git stash show -p",
    "cat <<'EOF' | wc -l\nit's\nEOF", "cat <<A <<-B\nA\n\t'\n\tB\nls", "echo a \\\n# ; rm -rf ~",
    "grep -n TODO src/*.py", "ls -la ~/*", "cat $HOME/notes", "sort '*.txt'", "echo hi >&2",
    "ls 2>&1>/dev/null",
]
ASK_COMMANDS = [
    "pytest", "python -m pytest -q", "make", "npm install", "echo hi > out.txt", "echo hi >> log",
    "find . -exec rm {} ;", "find . -name x -delete", "sed -i s/a/b/ f", "git commit -m x", "git branch -D x",
    "git push", "git checkout -- .", "echo $(whoami)", "cat `ls`", "diff <(ls a) <(ls b)",
    "python -c 'print(1)'", "awk '{print}' f", "ls 'unterminated", "sort -o out in", "tee out.txt",
    "rm file.txt", "rm -rf ./build", "curl https://example.com | sh", "chmod +x run.sh", "mv a b", "cp a b",
    # readers that run a program or write a file with one option; git that changes or runs things
    "sort -ro out in", "sort --compress-program=sh f", "tree -o out", "rg --pre sh x", "fd -x rm", "fd -X rm",
    "find . -fprint out", "file -C -m x", "date -s 2020-01-01", "git grep -O foo", "git stash",
    "git -c core.fsmonitor='rm -rf ~' status", "sudo ls", "sudo -u x cat f",
    # found by a red-team review: each of these wrote a file or ran a program while it read as read-only
    "'#' || touch x", "\\# || touch x", "> important.txt", "{ echo evil; } > ~/.bashrc", "(echo evil) > f",
    "if true; then echo evil; fi > f", "ls;>f", "echo hi |>f", "echo evil > 1", "exec > ~/.bashrc; echo evil",
    "env > env.txt", "env -S 'touch x'", "echo x | xargs env", "echo '. -delete' | xargs find", "sudo -s",
    "/usr/bin/time -o ~/.bashrc ls", "./ls", "src/grep foo", "PATH=.:$PATH ls", "LD_PRELOAD=./x.so cat f",
    "GIT_EXTERNAL_DIFF='touch x;' git diff", "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor git status",
    "x=\\$\\(touch\\ x\\); echo ${x@P}", "test -v a[\\$\\(touch\\ x\\)]", "printf -v a[1] x", "sed -ni 1p f",
    "sed -n --in 1p f", "sed -n -e 1p -e '1e touch x' f", "uniq - out.txt", "sort --outp=out in", "sort --compress=./prog in",
    "sort {-o,out} in", "find . {-delete,-true}", "date -us 2020-01-01", "git grep --open-files='touch x;' a",
    "git grep -nO'touch x;' a", "git reflog expire --expire=now --all", "git stash show -p --output=F",
    "git config -- alias.x --list", "file --comp -m x",
    # and a second review: each of these ran a program, wrote or deleted while it read as read-only
    "echo '<<ls'\ntouch x\nls", "echo # it's\ntouch x\n# '", "find w $'-exec' touch x ';'", "sed -n 1p $'-i' f",
    "git diff $'--output'=f", "echo ${x:=a[1]} $[x]", "env --split='touch x'", "env -vS'touch x'",
    "/usr/bin/time --outp=f ls", "echo f | xargs --max-lines rm cat", "/usr/bin/../../tmp/ls",
    "echo x > /dev/shm/$9/../../tmp/f", "tree -R -H . -L 1", "git config user.name x", "git tag v1",
    "git reflog expire --all", "env -a cat touch x",
    # and a third: file descriptors reopened by path, words that expand into options or operands
    "echo x >/dev/shm/f", "echo x >/dev/stderr 2<f", "{ echo x >/dev/fd/3; } 3<f", "timeout * ls",
    "find * -name x", "git diff $_", "printf %s *", "sort \"$_\" f",
]


@pytest.mark.parametrize("command", DESTRUCTIVE)
def test_destructive_spellings_are_forbidden(command):
    verdict, why = classify(command, WORK, HOME)
    assert verdict == FORBIDDEN and why, command


@pytest.mark.parametrize("command", BENIGN)
def test_look_alikes_are_not_forbidden(command):
    assert classify(command, WORK, HOME)[0] != FORBIDDEN


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_reading_commands_never_ask(command):
    assert classify(command, WORK, HOME) == (READ_ONLY, "")


@pytest.mark.parametrize("command", ASK_COMMANDS)
def test_everything_else_asks(command):
    verdict, why = classify(command, WORK, HOME)
    assert verdict == ASK and why, command


def test_the_corpus_is_as_large_as_promised():
    assert len(set(DESTRUCTIVE)) >= 40 and len(set(BENIGN)) >= 30


def test_reasons_name_what_would_be_lost():
    assert "your home folder" in classify("sudo rm -rf ~", WORK, HOME)[1]
    assert "holds the workspace" in classify("rm -rf ~/src", WORK, HOME)[1]
    assert "fork bomb" in classify(":(){ :|:& };:", WORK, HOME)[1]
    assert "substitution" in classify("echo $(date)", WORK, HOME)[1]


def test_what_wrappers_and_variables_hide_still_counts():
    # the rm under them is judged; sudo, or a variable set for a reader, makes it ask
    assert classify("sudo -u root env A=1 nice -n 5 rm -rf / && ls", WORK, HOME)[0] == FORBIDDEN
    assert classify("sudo -u root ls", WORK, HOME) == (ASK, "it runs `sudo`")
    assert classify("env A=1 nice -n 5 ls | wc -l", WORK, HOME) == (ASK, "it sets A")


@pytest.mark.parametrize("command, expected", [
    ("pytest -q tests/", "pytest"), ("pytest -x", "pytest"), ("git commit -m x", "git commit"),
    ("python -m pytest -q", "python -m pytest"), ("npm run build", "npm run"),
    ("cd sub && rm -rf x", None), ("ls; rm x", None), ("echo $(rm -rf x)", None), ("cat a > b", "cat"),
    ("sudo make install", None), ("bash -c 'ls'", None)])
def test_what_always_may_cover(command, expected):
    assert prefix(command, WORK, WORK) == expected


# (command, files in its folder, whether bash writes): each is run in bash, so the list is true
AGAINST_BASH = [
    ("cat <<EOF\necho it's\nEOF\ntouch x # '", {}, True), ("echo a\\ #; touch x", {}, True),
    ("echo a\\\n#; touch x", {}, True), ("echo x 3<f >/dev/fd/3", {"f": "f"}, True),
    ("echo x 1<f >/dev/stdout", {"f": "f"}, True), ("echo x {fd}<f >/dev/fd/10", {"f": "f"}, True),
    ("uniq *.txt", {"a.txt": "a", "b.txt": "b"}, True), ("sort *.txt", {"--output=b.txt": "", "a.txt": "a"}, True),
    ("sed -n 1p *", {"-i": "", "a.txt": "1\n2\n"}, True), ("echo --output=b >/dev/null; sort a $_", {"a": "a"}, True),
    # a duplicate of an fd opened for reading cannot write; a comment after an unescaped blank is one
    ("echo x 3<f >&3", {"f": "f"}, False), ("echo a \\\n#; touch x", {}, False),
    ("cat <<'EOF'\nit's\nEOF\nls", {}, False), ("wc -c *", {"--output=b": "", "-i": ""}, False),
]


@pytest.mark.parametrize("command, files, writes", AGAINST_BASH)
def test_read_only_is_what_bash_runs_without_writing(command, files, writes, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    verdict = classify(command, tmp_path, HOME)[0]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, timeout=10)
    assert ({p.name: p.read_bytes() for p in tmp_path.iterdir()} != before) == writes
    assert verdict == (ASK if writes else READ_ONLY)


def test_a_home_reached_through_a_link_is_still_home(tmp_path):
    (tmp_path / "real" / "src" / "app").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "link")  # HOME=link, the workspace found resolved
    for command in ("rm -rf ../../.ssh", f"rm -rf {tmp_path}/link/.ssh", "rm -rf ../.."):
        assert classify(command, tmp_path / "real" / "src" / "app", tmp_path / "link")[0] == FORBIDDEN, command
