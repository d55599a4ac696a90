from hypothesis import given
from hypothesis import strategies as st

from z1data.extract import extract_code


def test_last_block_wins():
    text = "Try:\n```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\n```\nDone."
    assert extract_code(text) == "print(2)"


def test_tags_and_untagged():
    for tag in ["python", "py", "python3", "Python", "PY3", "", 'python title="sol.py"', "{.python}"]:
        assert extract_code(f"x\n```{tag}\nx = 1\n```\n") == "x = 1", tag


def test_other_languages_are_skipped():
    text = "```python\nprint(3)\n```\nRun it:\n```bash\npython sol.py\n```\n```cpp\nint main(){}\n```"
    assert extract_code(text) == "print(3)"
    assert extract_code("```cpp\nint main(){}\n```") is None


def test_tilde_fences_and_longer_fences():
    assert extract_code("~~~python\na = 1\n~~~") == "a = 1"
    # a ```` fence is not closed by ``` inside it
    assert extract_code("````python\ns = '''\n```\n'''\n````") == "s = '''\n```\n'''"


def test_unterminated_last_block_runs_to_end():
    assert extract_code("```python\nprint(1)\n```\nNow faster:\n```python\nimport sys\nfor") == "import sys\nfor"


def test_none_cases():
    assert extract_code("") is None
    assert extract_code("no code here, just `inline` text") is None
    assert extract_code("```python\n   \n\n```") is None
    assert extract_code("```python\nx = 1\n```\n```python\n```") is None  # the last block is empty


def test_indented_fence_is_dedented_and_crlf_normalised():
    assert extract_code("1. Code:\n   ```python\n   def f():\n       return 1\n   ```") == "def f():\n    return 1"
    assert extract_code("```python\r\nx = 1\r\ny = 2\r\n```\r\n") == "x = 1\ny = 2"


_line = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
)
_code = st.lists(_line.filter(lambda s: not s.lstrip().startswith(("```", "~~~"))), min_size=1, max_size=8).map(
    "\n".join
)
_prose = st.text(st.characters(blacklist_characters="`~\r"), max_size=40)


@given(_prose, _code, _prose, st.sampled_from(["python", "py", "", "Python3"]))
def test_roundtrip(before, code, after, tag):
    text = f"{before}\n```{tag}\n{code}\n```\n{after}"
    assert extract_code(text) == (code if code.strip() else None)


@given(st.lists(_code.filter(lambda c: c.strip() != ""), min_size=1, max_size=4), _prose)
def test_last_of_many_wins(codes, prose):
    text = prose.join(f"\n```python\n{c}\n```\n" for c in codes)
    assert extract_code(text) == codes[-1]
