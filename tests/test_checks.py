"""The shared checks of user-given values: one rule and one wording for every knob."""

from __future__ import annotations

import math

import pytest

from arfx import ArfxError
from arfx.checks import check_integer, is_integer, is_number
from arfx.session import SessionOptions


def test_integers_in_range_pass_and_everything_else_names_the_knob():
    assert check_integer("workers", 3, 1) == 3
    assert check_integer("lag", 8, 1, 8) == 8
    for value, wanted in ((0, ">= 1"), (True, ">= 1"), (2.0, ">= 1"), ("2", ">= 1")):
        with pytest.raises(ValueError, match=f"workers must be an integer {wanted}, got "):
            check_integer("workers", value, 1)
    with pytest.raises(ArfxError, match=r"lag must be an integer in \[1, 8\], got 9"):
        check_integer("lag", 9, 1, 8, error=ArfxError)
    assert is_integer(5) and not is_integer(False) and not is_integer(5.0)
    assert is_number(0.5) and is_number(-2)
    assert not any(is_number(v) for v in (True, math.nan, math.inf, "1", None))


@pytest.mark.parametrize(
    "knob, value",
    [
        ("max_faces", True),  # True is 1 to Python: it was taken for one face
        ("max_faces", 9),
        ("queue_size", False),
        ("queue_size", 65),
        ("max_hands", 2.0),
        ("trim_interval", True),
        ("trim_interval", -1.0),
        ("trim_interval", math.inf),
        ("live_max_wait", -0.5),
        ("live_max_wait", True),
        ("live_max_wait", "0.5"),
    ],
)
def test_session_options_refuse_what_is_not_a_count_or_a_duration(knob, value):
    with pytest.raises(ArfxError, match=f"^{knob} must be "):
        SessionOptions(**{knob: value})
