"""RESPONSEFORMAT/FORMAT lookup: short names and MIME types, forgivingly."""

from __future__ import annotations

import pytest

from sciportal.errors import UsageError
from sciportal.formats import all_writers, get_writer


@pytest.mark.parametrize(
    ("value", "serialization"),
    [
        (None, "BINARY2"),
        ("", "BINARY2"),
        ("votable", "BINARY2"),
        ("application/x-votable+xml", "BINARY2"),
        ("Application/X-VOTable+XML; serialization = binary2", "BINARY2"),
        ("text/xml", "BINARY2"),
        ('text/xml; content="votable"', "BINARY2"),
        ("votable/td", "TABLEDATA"),
        ("application/x-votable+xml;serialization=TABLEDATA", "TABLEDATA"),
        ("application/x-votable+xml;serialization=BINARY", "BINARY"),
        ("votable/b", "BINARY"),
    ],
)
def test_votable_aliases(value, serialization):
    assert get_writer(value).serialization == serialization


@pytest.mark.parametrize(
    ("value", "ext"),
    [
        ("csv", "csv"),
        ("text/csv", "csv"),
        ("text/csv;header=present", "csv"),
        ("text/csv; charset=utf-8", "csv"),
        ("TSV", "tsv"),
        ("text/tab-separated-values", "tsv"),
    ],
)
def test_other_aliases(value, ext):
    assert get_writer(value).extension == ext


def test_unknown_format_names_the_accepted_ones():
    with pytest.raises(UsageError) as err:
        get_writer("application/x-excel")
    assert "votable" in err.value.message and "csv" in err.value.message
    assert err.value.http_status == 400


def test_registry_is_consistent():
    writers = all_writers()
    assert writers[0] is get_writer(None)
    names = [n for w in writers for n in w.names]
    assert len(names) == len(set(names))
    for w in writers:
        assert get_writer(w.mime) is w
        for n in w.names:
            assert get_writer(n) is w
