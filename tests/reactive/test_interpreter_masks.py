"""The interpreter's state masks: their values, what the hot loop relies on, and the
literals that spell them in ``Island._run``, the loop of ``Island.execute`` (issue 15).

The hot loop writes the masks as literals for speed; each such line carries a comment
repeating the expression with the names. These tests evaluate the comment with the
module's names and check it equals the literal code, so renaming or changing a bit
cannot leave the loop behind silently.
"""

from __future__ import annotations

import inspect
import io
import re
import tokenize

from reactive._impl import interpreter as itp
from reactive._impl.interpreter import (
    AVAIL,
    CANCEL_REQ,
    COMPLETE_REQ,
    DEMAND,
    FAIL_REQ,
    IN_CLOSED,
    OUT_CLOSED,
    PULL_DELIVER,
    PULL_OPEN_MASK,
    PULL_REQ,
    PULLED,
    PUSH_DELIVER,
    PUSH_OPEN_MASK,
    PUSH_REQ,
    TERMINATION_REQ,
)

#: Every state an open or closing connection can be in: at most one of the four
#: round-trip bits (PULL_REQ, DEMAND, PUSH_REQ, AVAIL), any close/termination bits.
_ROUND_TRIP = (0, PULL_REQ, DEMAND, PUSH_REQ, AVAIL)
_OTHER = (IN_CLOSED, OUT_CLOSED, COMPLETE_REQ, FAIL_REQ, CANCEL_REQ)
STATES = sorted(
    {
        rt | sum(b for i, b in enumerate(_OTHER) if combo >> i & 1)
        for rt in _ROUND_TRIP
        for combo in range(1 << len(_OTHER))
    }
)


def test_bit_values_are_pinned() -> None:
    assert (PULL_REQ, DEMAND, PUSH_REQ, AVAIL) == (1, 2, 4, 8)
    assert (IN_CLOSED, OUT_CLOSED) == (16, 32)
    assert (COMPLETE_REQ, FAIL_REQ, CANCEL_REQ) == (64, 128, 256)
    assert PULLED == 7


def test_mask_values_are_pinned() -> None:
    assert PUSH_OPEN_MASK == 20
    assert PULL_OPEN_MASK == 49
    assert PUSH_DELIVER == 12
    assert PULL_DELIVER == 3
    assert TERMINATION_REQ == 192


def test_push_open_mask_means_a_push_to_an_open_inlet() -> None:
    for st in STATES:
        assert (st & PUSH_OPEN_MASK == PUSH_REQ) == bool(st & PUSH_REQ and not st & IN_CLOSED)


def test_pull_open_mask_means_a_pull_with_both_sides_open() -> None:
    for st in STATES:
        expected = bool(st & PULL_REQ and not st & (IN_CLOSED | OUT_CLOSED))
        assert (st & PULL_OPEN_MASK == PULL_REQ) == expected


def test_delivery_by_xor_moves_exactly_one_bit_to_the_next() -> None:
    # The loop delivers by XOR; that is "clear the request, set the next bit" only
    # because the next bit is never set alongside the request.
    for st in STATES:
        if st & PUSH_REQ:
            assert st ^ PUSH_DELIVER == (st & ~PUSH_REQ) | AVAIL
        if st & PULL_REQ:
            assert st ^ PULL_DELIVER == (st & ~PULL_REQ) | DEMAND
    assert sum(1 for st in STATES if st & PUSH_REQ and st & AVAIL) == 0
    assert sum(1 for st in STATES if st & PULL_REQ and st & DEMAND) == 0


def test_termination_req_is_completion_or_failure() -> None:
    for st in STATES:
        assert bool(st & TERMINATION_REQ) == bool(st & (COMPLETE_REQ | FAIL_REQ))


_LITERAL_LINE = re.compile(r"\bst\s*[&^|]\s*~?\d")


def _annotated_lines(fn: object) -> list[tuple[str, str]]:
    """(code, comment) of every line of ``fn`` that applies a literal mask to ``st``."""
    src = inspect.getsource(fn)  # type: ignore[arg-type]
    comments = {
        tok.start[0]: tok.string[1:].strip()
        for tok in tokenize.generate_tokens(io.StringIO(src).readline)
        if tok.type == tokenize.COMMENT
    }
    out = []
    for lineno, line in enumerate(src.splitlines(), 1):
        code = line.split("#", 1)[0].strip()
        if _LITERAL_LINE.search(code):
            out.append((code, comments.get(lineno, "")))
    return out


def _expression(code: str) -> str:
    """The state expression of a hot-loop line: ``if E:`` / ``elif E:`` / ``x = E``."""
    code = code.rstrip(":")
    code = re.sub(r"^(if|elif)\s+", "", code)
    return code.split("=", 1)[1].strip() if re.match(r"^[\w.]+\s*=[^=]", code) else code


def test_every_literal_in_the_hot_loop_is_spelled_with_names_in_its_comment() -> None:
    names = {k: v for k, v in vars(itp).items() if k.isupper() and isinstance(v, int)}
    lines = _annotated_lines(itp.Island._run)
    assert len(lines) >= 6  # push, pull and the two drops (with their state updates)
    for code, comment in lines:
        expr = _expression(code)
        assert comment, f"literal mask without its names: {code!r}"
        named = comment.split(":", 1)[0]
        for st in STATES:
            lit_value = eval(expr, {"st": st})
            named_value = eval(named, {**names, "st": st})
            assert lit_value == named_value, (code, comment, st)


def test_exact_fast_cases_are_the_masked_cases_with_nothing_else_pending() -> None:
    # ``Island._run`` first compares the state with PUSH_REQ and PULL_REQ exactly and
    # then writes the constant AVAIL / DEMAND: that must be what the masked, XOR-ing
    # branches below it would do for those two states.
    assert PUSH_REQ & PUSH_OPEN_MASK == PUSH_REQ and PUSH_REQ ^ PUSH_DELIVER == AVAIL
    assert PULL_REQ & PULL_OPEN_MASK == PULL_REQ and PULL_REQ ^ PULL_DELIVER == DEMAND
    src = inspect.getsource(itp.Island._run)
    assert "if st == 4:  # st == PUSH_REQ" in src and "c.state = 8  # AVAIL" in src
    assert "elif st == 1:  # st == PULL_REQ" in src and "c.state = 2  # DEMAND" in src
