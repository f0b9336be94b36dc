"""Linear time and bounded memory for every input (issue 22): the command analysis, edits and their diffs,
/undo's copies, grep, hooks' output; and the small ones: binary matches, a NUL in a command, stray temp
files. Timings and memory figures are in benchmarks/run.py; these tests check behaviour."""
import re
from pathlib import Path

from hypothesis import given, settings, strategies as st

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
