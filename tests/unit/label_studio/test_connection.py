"""The label_studio connection type, the token kinds, and the trigger's serialized form."""

from __future__ import annotations

import pytest

from airflow_dl_provider.get_provider_info import get_provider_info
from airflow_dl_provider.label_studio.behaviour import token_kind


def test_connection_type_is_declared_for_the_hook() -> None:
    from airflow_dl_provider.hooks.label_studio import LabelStudioHook

    (declared,) = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "label_studio"
    ]

    assert declared["hook-class-name"] == "airflow_dl_provider.hooks.label_studio.LabelStudioHook"
    assert declared["hook-name"] == LabelStudioHook.hook_name == "Label Studio"
    assert LabelStudioHook.conn_type == "label_studio"
    behaviour = LabelStudioHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == declared["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == {"host": "Label Studio URL", "password": "API token"}


def test_the_hook_builds_a_client_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_dl_provider.hooks.label_studio import LabelStudioHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_LS_TEST",
        '{"conn_type": "label_studio", "host": "http://127.0.0.1:8081/", "password": "abc123def456", "extra": {"timeout": 5}}',
    )
    client = LabelStudioHook("ls_test").client

    assert (client.url, client.kind, client.timeout) == ("http://127.0.0.1:8081", "legacy", 5.0)
    assert client._authorization() == "Token abc123def456"


def test_a_connection_without_a_token_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_dl_provider.hooks.label_studio import LabelStudioHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_LS_EMPTY", '{"conn_type": "label_studio", "host": "http://127.0.0.1:8081"}'
    )

    with pytest.raises(
        ValueError, match=r"^connection 'ls_empty': token: empty; set the connection's password"
    ):
        _ = LabelStudioHook("ls_empty").client


def test_token_kinds() -> None:
    assert token_kind("eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2ln") == "pat"
    assert token_kind("0123456789abcdef0123456789abcdef01234567") == "legacy"
    with pytest.raises(ValueError, match="neither a personal access token"):
        token_kind("not a token!")


def test_trigger_round_trips_through_serialize() -> None:
    from airflow_dl_provider.triggers.label_studio import LabelStudioAnnotationTrigger

    trigger = LabelStudioAnnotationTrigger(
        project_id=7, target=360, job_name="digits-label-abc", poll_interval=5
    )
    path, kwargs = trigger.serialize()

    assert path == "airflow_dl_provider.triggers.label_studio.LabelStudioAnnotationTrigger"
    assert LabelStudioAnnotationTrigger(**kwargs).serialize() == (path, kwargs)


def test_a_task_with_all_its_annotations_is_labeled_even_when_its_flag_lags() -> None:
    from airflow_dl_provider.label_studio.api import is_labeled

    # Three annotations saved at once can leave Label Studio's is_labeled false (behaviour.IS_LABELED_CAN_LAG).
    assert is_labeled({"is_labeled": False, "total_annotations": 3, "overlap": 3})
    assert not is_labeled({"is_labeled": False, "total_annotations": 2, "overlap": 3})
    assert is_labeled({"is_labeled": True, "total_annotations": 1, "overlap": 3})
