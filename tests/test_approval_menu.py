"""The approval question as a small menu (issue 21 item 3): digits work as y/a/n, an answer it does not know
asks again instead of counting as a no, and the scope "always" would cover is said before the question."""
from test_repl import PROMPT, repl, server  # noqa: F401 - fixtures


def test_unknown_answers_ask_again_and_digits_answer(repl, server):  # noqa: F811
    make_a = "python3 -c 'open(\"a.txt\", \"w\")'"
    server.add({"tool_calls": [{"name": "bash", "arguments": {"command": make_a}}]}, "Ran it.",
               {"tool_calls": [{"name": "bash", "arguments": {"command": "touch b.txt"}}]}, "Declined.")
    repl.sendline("make a")
    repl.expect("ask again")
    repl.expect("exactly")  # the scope, said before it is asked: python3 -c runs any code, so only this
    repl.expect("lways:")
    repl.sendline("yep")  # once a silent no
    repl.expect_exact("'yep'")  # "'yep' is not an answer" (its other letters may be cursor moves)
    repl.sendline("")  # nothing highlighted: nothing picked (the call runs below, so it was no "no")
    repl.sendline("1")
    repl.expect("Ran it.")
    repl.expect_exact(PROMPT)
    assert (repl.work / "a.txt").exists() and len(server.requests) == 2
    repl.sendline("make b")
    repl.expect("lways:")
    repl.sendline("3 use the Makefile")
    repl.expect("Declined.")
    repl.expect_exact(PROMPT)
    assert not (repl.work / "b.txt").exists()
    assert "use the Makefile" in server.requests[3]["messages"][-1]["content"]
