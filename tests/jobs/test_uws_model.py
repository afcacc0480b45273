"""The UWS phase machine: every phase has a row, and the table says what UWS 1.1 allows."""

import re

import pytest

from sciportal.jobs.model import (
    ACTIVE_PHASES,
    FINAL_PHASES,
    TRANSITIONS,
    JobStateError,
    Phase,
    can_transition,
    check_transition,
    new_job_id,
)


def test_every_phase_has_a_row_and_only_phases_appear():
    assert set(TRANSITIONS) == set(Phase)
    for targets in TRANSITIONS.values():
        assert targets <= set(Phase)


def test_phase_values_match_the_uws_schema_enumeration():
    # The UWS 1.1 ExecutionPhase enumeration, written out independently.
    expected = {
        "PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR",
        "UNKNOWN", "HELD", "SUSPENDED", "ABORTED", "ARCHIVED",
    }  # fmt: skip
    assert {p.value for p in Phase} == expected


@pytest.mark.parametrize("old", list(Phase))
@pytest.mark.parametrize("new", list(Phase))
def test_check_transition_agrees_with_table(old, new):
    if new in TRANSITIONS[old]:
        check_transition(old, new)
        assert can_transition(old, new)
    else:
        with pytest.raises(JobStateError) as err:
            check_transition(old, new)
        assert err.value.http_status == 403
        assert old.value in err.value.message and new.value in err.value.message


def test_main_life_cycle_is_legal_and_final_phases_only_archive():
    path = [Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED, Phase.ARCHIVED]
    for a, b in zip(path, path[1:], strict=False):
        assert can_transition(a, b)
    for final in FINAL_PHASES:
        assert TRANSITIONS[final] <= {Phase.ARCHIVED}
    for active in ACTIVE_PHASES:
        assert can_transition(active, Phase.ABORTED)
        assert can_transition(active, Phase.ERROR)
    assert not can_transition(Phase.COMPLETED, Phase.EXECUTING)
    assert not can_transition(Phase.PENDING, Phase.COMPLETED)


def test_job_ids_are_unguessable_and_url_safe():
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    for job_id in ids:
        assert re.fullmatch(r"[a-z2-7]{24}", job_id)
