"""Linear time and bounded memory for every input (issue 22): the command analysis, edits and their diffs,
/undo's copies, grep, hooks' output; and the small ones: binary matches, a NUL in a command, stray temp
files. Timings and memory figures are in benchmarks/run.py; these tests check behaviour."""
import json
import re
from pathlib import Path

from hypothesis import given, settings, strategies as st

from scripted import ScriptedServer
from test_cli import env, workspace  # noqa: F401 (fixtures)
from test_scripting import call, nanocoder

from nanocoder.tools.shell import ASK, FORBIDDEN, MAX_ANALYSED, READ_ONLY, classify, fork_bomb

# the pattern shell.py had: quadratic in a long word (19 s for 40,000 hex characters)
OLD_FORK_BOMB = re.compile(r"(?:function\s+([\w:.-]+)|([\w:.-]+)\s*\(\s*\))"
                           r"\s*\{(?:[^}]*[;|&])?\s*(?:\1|\2)\s*[&|]")


# --- the command analysis -------------------------------------------------------------------

def test_a_command_over_the_cap_asks_and_says_why(tmp_path):
    command = "echo " + "a b " * (MAX_ANALYSED // 4)  # read-only, were it short
    assert classify(command[:1000], tmp_path) == (READ_ONLY, "")
    verdict, why = classify(command, tmp_path)
    assert verdict == ASK and "too long to analyse" in why and f"{MAX_ANALYSED:,}" in why


def test_just_under_the_cap_is_still_analysed(tmp_path):
    assert classify(":(){ :|:& };: " + "#" * (MAX_ANALYSED - 20), tmp_path)[0] == FORBIDDEN


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from([":", "a", "f", "()", "{", "}", "|", "&", ";", "\n", "function", ":()", "a()",
                                 "{:|:&", "$"]), max_size=20).map(" ".join))
def test_the_linear_fork_bomb_check_finds_all_the_old_pattern_found(command):
    assert fork_bomb(command) >= bool(OLD_FORK_BOMB.search(command))


def test_fork_bomb_spellings(tmp_path):
    for bomb in (":(){ :|:& };:", "bomb() { bomb | bomb & }; bomb", "function f { f & }; f",
                 "f(){\n  echo hi; f|f\n}"):
        assert classify(bomb, tmp_path)[0] == FORBIDDEN, bomb
    for harmless in ("f(){ echo; }; f & f", "echo 'a(){' b &", "x(){ y; }; { x | x; }"):
        assert classify(harmless, tmp_path)[0] != FORBIDDEN, harmless


# --- hooks ------------------------------------------------------------------------------------

def run_with_hook(env, workspace, hook: str):
    """A -y run whose PreToolUse hook is `hook`: (the run, the result the model read for its bash call)."""
    folder = Path(env["HOME"], ".nanocoder")
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"hooks": {"PreToolUse": [
        {"matcher": "Bash", "hooks": [{"type": "command", "command": hook}]}]}}))
    with ScriptedServer([{"tool_calls": [call("bash", command="echo hi")]}, "went on"]) as s:
        run = nanocoder(s, "-p", "go", "-y", env=env, cwd=workspace)
    results = [m["content"] for m in s.requests[1]["messages"] if m["role"] == "tool"]
    return run, results[0]


def test_a_hook_writing_bytes_that_are_not_utf8_is_read_with_replacement(env, workspace):
    run, result = run_with_hook(env, workspace, r"printf 'bad \377\376 bytes' >&2; exit 2")
    assert run.returncode == 0 and "Traceback" not in run.stderr and run.stdout == "went on\n"
    assert "blocked by a PreToolUse hook: bad \ufffd\ufffd bytes" in result


def test_a_hook_writing_300_mb_is_cut_to_its_head_and_tail(env, workspace):
    run, result = run_with_hook(env, workspace, "head -c 300000000 /dev/zero >&2; echo END >&2; exit 2")
    assert run.returncode == 0 and run.stdout == "went on\n", run.stderr
    assert len(result) < 40_000 and "blocked by a PreToolUse hook" in result and result.endswith("END")
    assert re.search(r"\[\.\.\. [\d,]+ characters and [\d,]+ more bytes cut \.\.\.\]", result), result[-300:]
