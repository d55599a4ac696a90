"""Pull the solution code out of a teacher response.

The rule is the one the Z1 data uses: the code of the response's LAST fenced code block. Teachers
usually sketch, revise and then give the final program, so the last block is the answer.

Choices, so the rule stays predictable:

* Fences are ```` ``` ```` or ``~~~`` (3 or more), optionally indented; a block closes on a fence of the
  same character at least as long (CommonMark). Content lines lose up to the opening fence's indentation,
  so code nested in a Markdown list comes out flush left.
* Only blocks tagged as Python (``python``, ``py``, ``python3``, ``py3``, any case) or untagged count:
  we execute Python, so a trailing ```` ```bash ```` or ```` ```json ```` block is not "the code".
* A fence still open at the end of the text (a response cut off by the token limit) counts as a block
  running to the end: it is the last thing the teacher wrote, and the judge decides whether it works.
* The code is returned verbatim (line endings normalised to ``\\n``); ``None`` when there is no block
  or the last block is empty or whitespace only.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_PY_TAGS = frozenset({"", "python", "py", "python3", "py3"})


def extract_code(response: str) -> str | None:
    """The code of the last Python (or untagged) fenced block of ``response``, or ``None``."""
    blocks = [code for tag, code in _blocks(response) if tag in _PY_TAGS]
    if not blocks or not blocks[-1].strip():
        return None
    return blocks[-1]


def _blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as (lower-case language tag, code), in order."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m["fence"][0] == "`" and "`" in m["info"]):  # backtick info may not hold backticks
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"].expandtabs(4))
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(_dedent(lines[i], indent))
            i += 1
        out.append((_tag(m["info"]), "\n".join(body)))
        i += 1  # skip the closing fence (or run past the end when the block was left open)
    return out


def _closes(line: str, fence: str) -> bool:
    """A closing fence: the same character, at least as long, nothing after it but spaces."""
    s = line.strip()
    return len(s) >= len(fence) and s == fence[0] * len(s)


def _dedent(line: str, indent: int) -> str:
    """Remove up to ``indent`` leading spaces (CommonMark strips the fence's indentation from content)."""
    n = 0
    while n < indent and n < len(line) and line[n] == " ":
        n += 1
    return line[n:]


def _tag(info: str) -> str:
    """First word of the info string, lower case: ``Python title="x"`` and ``{.python}`` give ``python``."""
    m = re.match(r"[\w+-]*", info.strip().lstrip("{.").lower())
    return m.group() if m else ""
