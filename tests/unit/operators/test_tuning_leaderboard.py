"""The tuning leaderboard the task log shows at the end, from the operator's XCom result."""

from __future__ import annotations

from airflow_dl_provider.operators.tuning import leaderboard_text


def test_the_leaderboard_lists_each_trial_ranked_with_its_value_status_and_hyperparameters() -> None:
    result = {
        "job_name": "tune-1",
        "objective": "val:acc",
        "objective_type": "Maximize",
        "leaderboard": [
            {
                "training_job": "tune-1-002",
                "objective_value": 0.953,
                "status": "Completed",
                "hyperparameters": {"lr": 0.1, "epochs": 5},
            },
            {
                "training_job": "tune-1-001",
                "objective_value": None,
                "status": "Failed",
                "hyperparameters": {},
            },
        ],
    }
    assert leaderboard_text(result).splitlines() == [
        "Leaderboard of tune-1 (val:acc, Maximize), best 2:",
        "   1. tune-1-002  0.953  Completed  epochs=5, lr=0.1",
        "   2. tune-1-001  -  Failed",
    ]


def test_a_search_with_no_objective_says_so_in_one_line() -> None:
    text = leaderboard_text(
        {"job_name": "t", "objective": "m", "objective_type": "Minimize", "leaderboard": []}
    )
    assert text == "Leaderboard of t (m, Minimize), best 0: no trial reported an objective value"
