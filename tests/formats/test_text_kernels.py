"""The Arrow-kernel text core shared by TABLEDATA, CSV and TSV: fast paths equal the exact ones."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sciportal.formats import ResultInfo, get_writer, text
from tests.formats.conftest import TRICKY, mixed
from tests.formats.test_votable import check_values, read

XML_CASES = [
    *TRICKY,
    "cr\rhere",
    "nul\x00bell\x07",
    "nonchar \ufffe \uffff end",
    "private \uf8ff and \ufeff",  # lead byte 0xEF but valid XML
    "astral 😀",
    "plain ascii",
    None,
]


def _xml_exact(arr: pa.Array) -> pa.Array:
    arr = pc.replace_substring_regex(arr, text._XML_INVALID, "\ufffd")
    for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        arr = pc.replace_substring(arr, old, new)
    return arr


def _tsv_exact(arr: pa.Array) -> pa.Array:
    for old, new in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        arr = pc.replace_substring(arr, old, new)
    return arr


def _arrays() -> list[pa.Array]:
    """Each case alone, all together, and slices whose neighbours need escaping."""
    out = [pa.array([s], pa.string()) for s in XML_CASES]
    out.append(pa.array(XML_CASES, pa.string()))
    everything = pa.array(["a&b", "plain", "clean", "tab\t", "x\\y"], pa.string())
    out += [everything.slice(1, 2), everything.slice(0, 1), everything.slice(3), everything[:0]]
    out.append(pa.nulls(3, pa.string()))
    return out


def test_precheck_sees_only_the_slice():
    arr = pa.array(["a&b", "plain", "c<d"])
    assert text._may_hold(arr, 0x20, b"&<>")
    assert not text._may_hold(arr.slice(1, 1), 0x20, b"&<>")


@pytest.mark.parametrize("i", range(len(_arrays())))
def test_xml_escape_matches_exact(i):
    arr = _arrays()[i]
    assert text.xml_escape(arr).to_pylist() == _xml_exact(arr).to_pylist()


@pytest.mark.parametrize("i", range(len(_arrays())))
def test_tsv_escape_matches_exact(i):
    arr = _arrays()[i]
    assert text.tsv_escape(arr).to_pylist() == _tsv_exact(arr).to_pylist()


def test_join_rows_nulls_prefix_suffix():
    a = pa.array(["1", None, "3"])
    b = pa.array([None, "y", "z"])
    got = bytes(text.join_rows([a, b], "|", "<", ">\n", 3))
    assert got == b"<1|>\n<|y>\n<3|z>\n"
    assert bytes(text.join_rows([b], "|", "<", ">", 3)) == b"<><y><z>"
    assert bytes(text.join_rows([a, b], ",", "", "\r\n", 3)) == b"1,\r\n,y\r\n3,z\r\n"
    assert bytes(text.join_rows([a], ",", "", "", 3)) == b"13"
    assert bytes(text.join_rows([], ",", "<", ">", 2)) == b"<><>"


def _write(fmt: str, batches, columns) -> bytes:
    out = io.BytesIO()
    get_writer(fmt).write(batches, columns, out, ResultInfo())
    return out.getvalue()


def test_tabledata_row_slices_equal_one_pass(monkeypatch):
    """Batches big enough to be split across workers write what one pass writes."""
    batch, columns = mixed(3 * text.PARALLEL_MIN_ROWS + 17)
    parallel = _write("votable/td", [batch], columns)
    monkeypatch.setattr(text, "PARALLEL_MIN_ROWS", 10**9)
    assert _write("votable/td", [batch], columns) == parallel
    _, table = read(parallel)
    check_values(batch, table)
