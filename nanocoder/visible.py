"""Text on its way to the terminal, shown, never obeyed: model text, tool output, file names may hold escapes
that redraw the screen (a forged question), set the clipboard or title, or reorder text (bidi)."""
import errno
import re

CONTROL = re.compile("\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    return CONTROL.sub(_show, text)


def _show(match) -> str:
    code = ord(match[0][-1])
    if match[0] == "\r\n":  # a Windows line end is a line end, not a ^M on every line
        return "\n"
    if code < 0x20 or code == 0x7f:
        return "^" + chr(code ^ 0x40)
    return f"\\x{code:02x}" if code <= 0x9f else f"\\u{code:04x}"


def terminal(**options):
    """A rich Console that draws only visible text: strings are made visible before rich lays them out, and
    every other segment is checked again on its way out (rich's own control segments are left alone)."""
    from rich.console import Console
    from rich.segment import Segment

    class Terminal(Console):
        def render_str(self, text, **kwargs):
            return super().render_str(visible(text), **kwargs)

        def render(self, renderable, options=None):
            for segment in super().render(renderable, options):
                if segment.control is None and CONTROL.search(segment.text):
                    segment = Segment(visible(segment.text), segment.style)
                yield segment

        def on_broken_pipe(self):  # the reader left (`| head -1`): rich would exit 1; cli.main ends quietly
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
    return Terminal(**options)
