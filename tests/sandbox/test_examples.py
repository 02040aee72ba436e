"""Finding checkable examples in real prompt shapes, and leaving out what is not one."""

from __future__ import annotations

from plugins.validators.examples import extract_examples

HUMANEVAL = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
    True
    """
'''

MBPP = '''Write a python function to remove first and last occurrence of a given character from the string.
Your code should pass these tests:

assert remove_Occ("hello","l") == "heo"
assert remove_Occ("abcda","a") == "bcd"
assert remove_Occ("PHP","P") == "H"
'''

LEETCODE = '''Given an array of integers nums and an integer target, return indices of the two numbers such that
they add up to target.

**Example 1:**

**Input:** nums = [2,7,11,15], target = 9
**Output:** [0,1]
**Explanation:** Because nums[0] + nums[1] == 9, we return [0, 1].

**Example 2:**

**Input:** nums = [3,2,4], target = 6
**Output:** [1,2]
'''

STDIN = '''Read n, then n integers on one line, and print their sum.

Input
```
3
1 2 3
```
Output
```
6
```
'''


def scored(prompt: str) -> list[tuple[str, str, str | None, str]]:
    return [(e.style, e.source, e.expected, e.compare) for e in extract_examples(prompt) if e.scored]


def test_humaneval_docstring_doctests():
    assert scored(HUMANEVAL) == [
        ("doctest", "has_close_elements([1.0, 2.0, 3.0], 0.5)", "False", "output"),
        ("doctest", "has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True", "output"),
    ]
    assert all(e.names == ("has_close_elements",) for e in extract_examples(HUMANEVAL))


def test_doctest_multiline_output_tracebacks_and_setup_steps():
    prompt = '''def f():
    """
    >>> s = Stack()
    >>> s.push(1)
    >>> s.pop()
    1
    >>> for x in pairs(2):
    ...     print(x)
    (0, 1)
    (1, 2)
    >>> pairs(-1)
    Traceback (most recent call last):
      ...
    ValueError: negative
    """
'''
    examples = extract_examples(prompt)
    assert [(e.source, e.scored) for e in examples[:2]] == [("s = Stack()", False), ("s.push(1)", False)]
    assert (examples[2].source, examples[2].expected, examples[2].names) == ("s.pop()", "1", ("Stack",))
    assert examples[3].source == "for x in pairs(2):\n    print(x)" and examples[3].expected == "(0, 1)\n(1, 2)"
    assert examples[4].expected.startswith("Traceback") and examples[4].expected.endswith("ValueError: negative")


def test_mbpp_assert_lines():
    assert scored(MBPP) == [
        ("assert", 'remove_Occ("hello","l")', '"heo"', "value"),
        ("assert", 'remove_Occ("abcda","a")', '"bcd"', "value"),
        ("assert", 'remove_Occ("PHP","P")', '"H"', "value"),
    ]


def test_other_asserts_run_as_statements_and_test_helpers_are_left_out():
    prompt = '''def check(candidate):
    assert candidate([1, 2]) == 3
    assert result == 3
assert math.isclose(area(2), 12.566, rel_tol=1e-3)
assert is_prime(7)
assert not is_prime(8)
'''
    assert [(s, src) for s, src, _, _ in scored(prompt)] == [
        ("assert", "assert math.isclose(area(2), 12.566, rel_tol=1e-3)"),
        ("assert", "assert is_prime(7)"),
        ("assert", "assert not is_prime(8)"),
    ]
    assert extract_examples(prompt)[0].imports == ("math",)


def test_arrow_examples_in_prose():
    prompt = """Write a function `square(n)` that returns n squared.
Example: square(3) -> 9
For example, `square(-2)` should return `4`.
square(0) == 0, square(1) == 1
print(square(5))  # 25
is_even(4) ➞ true
"""
    assert scored(prompt) == [
        ("arrow", "square(3)", "9", "value"),
        ("arrow", "square(-2)", "4", "value"),
        ("arrow", "square(0)", "0", "value"),
        ("arrow", "square(1)", "1", "value"),
        ("arrow", "square(5)", "25", "value"),
        ("arrow", "is_even(4)", "True", "value"),
    ]


def test_arrow_lookalikes_are_not_examples():
    prompt = """Write area(r) that returns the area of a circle of radius r.
if area(2) > 3: print(area(2))
g(f(3))  # 9
Use len(xs) -> int to count. Call solve(data) => result.
"""
    assert scored(prompt) == []


def test_leetcode_input_output_pairs():
    assert scored(LEETCODE) == [
        ("io", "nums = [2,7,11,15], target = 9", "[0,1]", "io"),
        ("io", "nums = [3,2,4], target = 6", "[1,2]", "io"),
    ]


def test_stdin_style_input_output_pairs_in_fences():
    assert scored(STDIN) == [("io", "3\n1 2 3", "6", "io")]


def test_format_descriptions_are_not_input_output_examples():
    prompt = ("Input: a list of integers\nOutput: their sum\n\n"
              "Input\nThe first line contains an integer n.\n\nOutput\nPrint the answer.\n")
    assert scored(prompt) == []
    assert scored("Input: hello world\nOutput: dlrow olleh\n") == [("io", "hello world", "dlrow olleh", "io")]


def test_no_examples_means_nothing_to_check():
    for prompt in ("Write a function that reverses a string.",
                   "Refactor this:\n```python\ndef f(x):\n    return x+1\n```",
                   "The input is a list and the output is its sum.",
                   ""):
        assert extract_examples(prompt) == ()


def test_duplicates_are_dropped():
    prompt = 'assert f(1) == 2\nassert f(1) == 2\nExample: f(1) -> 2\n'
    assert len(scored(prompt)) == 1
