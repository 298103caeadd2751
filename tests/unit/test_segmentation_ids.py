"""Segment id lists are checked as a whole when every id is plain, one by one otherwise: the
two checks must agree on every list, hostile ones included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.errors import InvalidArgument
from services.segmentation.entrypoint import SegmentationServicer, _segment_id

ids = st.lists(
    st.one_of(
        st.text(alphabet="abcXYZ019_.:-", min_size=1, max_size=70),  # plain, or too long
        st.text(alphabet="ab\n \t\u00e9\x00", max_size=5),  # joins, spaces, controls, empty
    ),
    max_size=8,
)


def _one_by_one(values: list[str]) -> list[str] | str:
    try:
        return [_segment_id(v, f"segment_ids[{i}]") for i, v in enumerate(values)]
    except InvalidArgument as error:
        return error.violations[0][0]


@given(ids)
def test_the_list_check_agrees_with_the_check_of_each_id(values: list[str]) -> None:
    try:
        checked: list[str] | str = SegmentationServicer._ids(values, "segment_ids")
    except InvalidArgument as error:
        checked = error.violations[0][0]
    assert checked == _one_by_one(values)


def test_an_id_holding_a_newline_is_not_two_plain_ids() -> None:
    with pytest.raises(InvalidArgument) as refused:
        SegmentationServicer._ids(["abc", "seg\nment"], "segment_ids")
    assert refused.value.violations[0][0] == "segment_ids[1]"
