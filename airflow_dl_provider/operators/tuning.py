"""Hyperparameter tuning: a training definition and a search -> one CreateHyperParameterTuningJob plan.

The operator takes the job each trial runs as a
:class:`~airflow_dl_provider.specs.training.TrainingDefinition` (``training=``), the same spec a
:class:`~airflow_dl_provider.operators.training.DistributedTrainingOperator` takes: it becomes the
tuning job's ``TrainingJobDefinition``, built by the same code, with the same checks, source upload
and pre-flight. The operator composes it rather than inheriting the training operator's arguments.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.hyperparameters import decode_hyperparameters
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import JobPlan
from airflow_dl_provider.operators.base import SageMakerJobOperator
from airflow_dl_provider.operators.training import (
    check_training,
    compose_training,
    encode_hyperparameter,
    log_cost,
    pop_training_arguments,
)
from airflow_dl_provider.validation.preflight import check_region, check_search_cost

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_dl_provider.jobs.plan import RequestPath, Upload
    from airflow_dl_provider.specs.training import TrainingDefinition

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
OBJECTIVE_TYPES = ("Maximize", "Minimize")
EARLY_STOPPING_TYPES = ("Off", "Auto")
WARM_START_TYPES = ("IdenticalDataAndAlgorithm", "TransferLearning")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
RANGE_KEYS = {
    "integer": frozenset({"type", "min", "max", "scaling"}),
    "continuous": frozenset({"type", "min", "max", "scaling"}),
    "categorical": frozenset({"type", "values"}),
}
COMPLETION_KEYS = frozenset({"target_objective_value", "max_jobs_not_improving", "complete_on_convergence"})
# SageMaker's limits: ranges per type, values per categorical range, warm-start parents.
MAX_RANGES = 30
MAX_PARENTS = 5


def _number(task: str, where: str, value: Any, *, integer: bool) -> float:
    numeric = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    number = float(value) if numeric else math.nan
    if not math.isfinite(number):
        raise ValueError(f"{task}: {where} must be {'an integer' if integer else 'a number'}, got {value!r}")
    return number


def _range(task: str, name: str, spec: Any, script_mode: bool) -> tuple[str, dict[str, Any]]:
    """One ``parameter_ranges`` entry -> (ParameterRanges list key, the API's range)."""
    where = f"parameter_ranges[{name!r}]"
    if not isinstance(spec, Mapping) or spec.get("type") not in RANGE_KEYS:
        raise ValueError(f"{task}: {where} needs 'type': one of {', '.join(RANGE_KEYS)}")
    kind = spec["type"]
    unknown = set(spec) - RANGE_KEYS[kind]
    if unknown:
        raise ValueError(
            f"{task}: {where} has unknown key(s) {sorted(unknown)}; allowed: {sorted(RANGE_KEYS[kind])}"
        )
    if kind == "categorical":
        values = spec.get("values")
        if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= MAX_RANGES:
            raise ValueError(f"{task}: {where}.values must be a list of 1 to {MAX_RANGES} values")
        # Encoded like every other hyperparameter (JSON in script mode, where the toolkit decodes them).
        encoded = [encode_hyperparameter(v, script_mode) for v in values]
        if len(set(encoded)) != len(encoded):
            raise ValueError(f"{task}: {where}.values has duplicates")
        return "CategoricalParameterRanges", {"Name": name, "Values": encoded}
    integer = kind == "integer"
    low = _number(task, f"{where}.min", spec.get("min"), integer=integer)
    high = _number(task, f"{where}.max", spec.get("max"), integer=integer)
    scaling = spec.get("scaling", "Auto")
    if low >= high:
        raise ValueError(f"{task}: {where}: min ({spec['min']}) must be below max ({spec['max']})")
    if scaling not in SCALING_TYPES:
        raise ValueError(f"{task}: {where}.scaling {scaling!r} is not one of {', '.join(SCALING_TYPES)}")
    if scaling == "Logarithmic" and low <= 0:
        raise ValueError(f"{task}: {where}: Logarithmic scaling needs min > 0, got {spec['min']}")
    if scaling == "ReverseLogarithmic" and (integer or not 0 <= low < high < 1):
        raise ValueError(
            f"{task}: {where}: ReverseLogarithmic needs a continuous range with 0 <= min < max < 1"
        )
    key = "IntegerParameterRanges" if integer else "ContinuousParameterRanges"
    text = (lambda v: str(int(v))) if integer else repr
    return key, {
        "Name": name,
        "MinValue": text(spec["min"]),
        "MaxValue": text(spec["max"]),
        "ScalingType": scaling,
    }


def parameter_ranges_request(
    task: str, ranges: Mapping[str, Any], script_mode: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """``{"lr": {"type": "continuous", "min": 1e-3, "max": 0.5, "scaling": "Logarithmic"}, ...}`` -> ParameterRanges.

    :param script_mode: categorical values JSON-encoded (as the SDK does for framework estimators),
        else ``str()``.
    """
    if not ranges:
        raise ValueError(f"{task}: parameter_ranges: name at least one hyperparameter to tune")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, spec in ranges.items():
        key, item = _range(task, str(name), spec, script_mode)
        out.setdefault(key, []).append(item)
    for key, items in out.items():
        if len(items) > MAX_RANGES:
            raise ValueError(f"{task}: parameter_ranges: {len(items)} {key}; SageMaker allows {MAX_RANGES}")
    return out


def grid_size(ranges: Mapping[str, Any]) -> int:
    return math.prod(len(r["Values"]) for r in ranges.get("CategoricalParameterRanges") or [])


def tuning_config_errors(config: Mapping[str, Any]) -> list[str]:
    """What SageMaker refuses in a HyperParameterTuningJobConfig beyond its shape, one line each."""
    errors = []
    strategy = config.get("Strategy")
    ranges = config.get("ParameterRanges") or {}
    limits = config.get("ResourceLimits") or {}
    numeric = [
        r["Name"]
        for key in ("ContinuousParameterRanges", "IntegerParameterRanges")
        for r in ranges.get(key) or []
    ]
    if strategy == "Grid" and numeric:
        errors.append(
            f"strategy: Grid takes categorical ranges only; {', '.join(numeric)} is continuous or integer "
            "(list the values to try as a categorical range, or use Random or Bayesian)"
        )
    elif strategy == "Grid" and limits.get("MaxNumberOfTrainingJobs") not in (None, grid_size(ranges)):
        errors.append(
            f"max_jobs: Grid runs every combination ({grid_size(ranges)}); leave max_jobs unset or set it to that, "
            f"got {limits['MaxNumberOfTrainingJobs']}"
        )
    if strategy != "Grid" and not limits.get("MaxNumberOfTrainingJobs"):
        errors.append(f"max_jobs: {strategy} search needs max_jobs (how many training jobs to run)")
    if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        errors.append(
            "early_stopping: TrainingJobEarlyStoppingType must be Off with Hyperband, which stops trials itself; "
            "set early_stopping='Off'"
        )
    if "StrategyConfig" in config and strategy != "Hyperband":
        errors.append(
            f"hyperband_min_resource/hyperband_max_resource: only apply to Hyperband, not {strategy}"
        )
    return errors


def leaderboard_text(result: Mapping[str, Any]) -> str:
    """The task log's leaderboard: rank, trial, objective value, status and tuned hyperparameters."""
    rows = result.get("leaderboard") or []
    head = (
        f"Leaderboard of {result.get('job_name')} ({result.get('objective')}, "
        f"{result.get('objective_type')}), best {len(rows)}:"
    )
    if not rows:
        return head + " no trial reported an objective value"
    lines = [head]
    for rank, row in enumerate(rows, 1):
        value = row.get("objective_value")
        shown = f"{value:.6g}" if isinstance(value, (int, float)) else "-"
        tuned = ", ".join(f"{k}={v}" for k, v in sorted((row.get("hyperparameters") or {}).items()))
        lines.append(f"  {rank:>2}. {row['training_job']}  {shown}  {row.get('status')}  {tuned}".rstrip())
    return "\n".join(lines)


def _in_definition(upload: Upload) -> Upload:
    """A training job's upload, as the tuning request names it: its field inside TrainingJobDefinition."""
    first, *rest = upload.at
    at: RequestPath = (
        "TrainingJobDefinition",
        "StaticHyperParameters" if first == "HyperParameters" else first,
        *rest,
    )
    return dataclasses.replace(upload, at=at)


class HyperparameterTuningOperator(SageMakerJobOperator):
    """Tune a training job's hyperparameters with SageMaker automatic model tuning.

    Each trial is ``training``, a :class:`~airflow_dl_provider.specs.training.TrainingDefinition`
    (the same one a training task takes); its ``hyperparameters`` become the static ones (a tuned
    name is left out of them) and its ``metric_definitions`` must define ``objective_metric``.

    :param training: the training job each trial runs. (templated: its fields are)
    :param objective_metric: the metric to optimise, a key of the definition's ``metric_definitions``.
    :param parameter_ranges: hyperparameter name -> ``{"type": "continuous"|"integer", "min", "max",
        "scaling": "Auto"|"Linear"|"Logarithmic"|"ReverseLogarithmic"}`` or
        ``{"type": "categorical", "values": [...]}`` (values encoded like all hyperparameters: JSON in
        script mode, ``str()`` for an image without a script).
    :param objective_type: ``Maximize`` (default) or ``Minimize``.
    :param strategy: ``Bayesian`` (default), ``Random``, ``Grid`` (categorical ranges only; runs every
        combination) or ``Hyperband``.
    :param max_jobs: how many training jobs; required except for Grid, where it must equal the grid.
    :param max_parallel_jobs: how many run at once.
    :param max_tuning_runtime_seconds: ``ResourceLimits.MaxRuntimeInSeconds`` of the whole tuning job.
    :param early_stopping: ``Off`` (default) or ``Auto``; must be ``Off`` with Hyperband.
    :param completion_criteria: ``target_objective_value`` (float), ``max_jobs_not_improving`` (>= 3),
        ``complete_on_convergence`` (bool).
    :param warm_start_parents: up to 5 earlier tuning jobs to start from. (templated)
    :param warm_start_type: ``IdenticalDataAndAlgorithm`` (default) or ``TransferLearning``.
    :param random_seed: ``RandomSeed``: the same seed proposes the same trials.
    :param hyperband_min_resource: Hyperband's ``MinResource`` (e.g. epochs).
    :param hyperband_max_resource: Hyperband's ``MaxResource``.
    :param leaderboard_size: how many of the best trials the result lists.
    :param max_cost_usd: bound on the whole search: the number of training jobs (``max_jobs``, or the
        grid) times one trial's worst case.
    :param price_per_hour: the price for that estimate (the built-in list prices are us-east-1's).

    Deprecated (this release only): the training definition's fields and the training operator's
    flat arguments given beside the search (``role_arn=``, ``instance_type=``, ``entry_point=`` ...)
    build ``training`` with a ``DeprecationWarning``.
    """

    job_kind = JOB_KINDS["tuning"]
    template_fields: Sequence[str] = (*SageMakerJobOperator.template_fields, "training", "warm_start_parents")
    ui_color = "#dcebd6"

    def __init__(
        self,
        *,
        training: TrainingDefinition | None = None,
        objective_metric: str,
        parameter_ranges: Mapping[str, Mapping[str, Any]],
        objective_type: str = "Maximize",
        strategy: str = "Bayesian",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        max_tuning_runtime_seconds: int | None = None,
        early_stopping: str = "Off",
        completion_criteria: Mapping[str, Any] | None = None,
        warm_start_parents: Sequence[str] | None = None,
        warm_start_type: str = "IdenticalDataAndAlgorithm",
        random_seed: int | None = None,
        hyperband_min_resource: int | None = None,
        hyperband_max_resource: int | None = None,
        leaderboard_size: int = 5,
        max_cost_usd: float | None = None,
        price_per_hour: float | None = None,
        **kwargs: Any,
    ) -> None:
        fields, flat = pop_training_arguments(kwargs)
        super().__init__(**kwargs)
        task = self.task_id
        if training is None:
            if not (fields or flat):
                raise ValueError(
                    f"{task}: training: give the job each trial runs, training=TrainingDefinition(...)"
                )
            warnings.warn(
                f"{task}: {', '.join(sorted({*fields, *flat}))}: training arguments beside the search are "
                "deprecated and go in the next release; pass training=TrainingDefinition(...)",
                DeprecationWarning,
                stacklevel=2,
            )
        self.training = compose_training(task, training, fields, flat, warn=False)
        for field, value, allowed in (
            ("objective_type", objective_type, OBJECTIVE_TYPES),
            ("strategy", strategy, STRATEGIES),
            ("early_stopping", early_stopping, EARLY_STOPPING_TYPES),
            ("warm_start_type", warm_start_type, WARM_START_TYPES),
        ):
            if value not in allowed:
                raise ValueError(f"{task}: {field}: {value!r} is not one of {', '.join(allowed)}")
        metrics = self.training.metric_definitions
        if metrics and objective_metric not in metrics:
            raise ValueError(
                f"{task}: objective_metric {objective_metric!r} is not in metric_definitions "
                f"({', '.join(metrics)}); add its regex there"
            )
        if max_parallel_jobs < 1 or (max_jobs is not None and max_jobs < 1):
            raise ValueError(f"{task}: max_jobs and max_parallel_jobs must be >= 1")
        if not 1 <= leaderboard_size <= 100:
            raise ValueError(f"{task}: leaderboard_size must be 1 to 100, got {leaderboard_size}")
        if warm_start_parents is not None and not 1 <= len(warm_start_parents) <= MAX_PARENTS:
            raise ValueError(f"{task}: warm_start_parents takes 1 to {MAX_PARENTS} tuning job names")
        self.objective_metric = objective_metric
        self.objective_type = objective_type
        self.strategy = strategy
        self.parameter_ranges = dict(parameter_ranges)
        self.warm_start_parents = list(warm_start_parents) if warm_start_parents else None
        self.warm_start_type = warm_start_type
        self.leaderboard_size = leaderboard_size
        self.max_cost_usd = max_cost_usd
        self.price_per_hour = price_per_hour
        self.tuning_config = self._tuning_config(
            max_jobs,
            max_parallel_jobs,
            max_tuning_runtime_seconds,
            early_stopping,
            completion_criteria,
            random_seed,
            (hyperband_min_resource, hyperband_max_resource),
        )
        errors = tuning_config_errors(self.tuning_config)
        if errors:
            raise ValueError(f"{task}: {errors[0]}")

    def _tuning_config(
        self,
        max_jobs: int | None,
        max_parallel_jobs: int,
        max_runtime: int | None,
        early_stopping: str,
        completion: Mapping[str, Any] | None,
        random_seed: int | None,
        hyperband: tuple[int | None, int | None],
    ) -> dict[str, Any]:
        limits: dict[str, Any] = {"MaxParallelTrainingJobs": int(max_parallel_jobs)}
        if max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = int(max_jobs)
        if max_runtime is not None:
            limits["MaxRuntimeInSeconds"] = int(max_runtime)
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {
                "Type": self.objective_type,
                "MetricName": self.objective_metric,
            },
            "ResourceLimits": limits,
            "ParameterRanges": parameter_ranges_request(
                self.task_id, self.parameter_ranges, script_mode=self.training.script_mode
            ),
            "TrainingJobEarlyStoppingType": early_stopping,
        }
        criteria = self._completion_criteria(completion or {})
        if criteria:
            config["TuningJobCompletionCriteria"] = criteria
        if random_seed is not None:
            config["RandomSeed"] = int(random_seed)
        low, high = hyperband
        if low is not None or high is not None:
            band = {k: int(v) for k, v in (("MinResource", low), ("MaxResource", high)) if v is not None}
            config["StrategyConfig"] = {"HyperbandStrategyConfig": band}
        return config

    def _completion_criteria(self, completion: Mapping[str, Any]) -> dict[str, Any]:
        task = self.task_id
        unknown = set(completion) - COMPLETION_KEYS
        if unknown:
            raise ValueError(
                f"{task}: completion_criteria has unknown key(s) {sorted(unknown)}; allowed: {sorted(COMPLETION_KEYS)}"
            )
        criteria: dict[str, Any] = {}
        if completion.get("target_objective_value") is not None:
            target = completion["target_objective_value"]
            criteria["TargetObjectiveMetricValue"] = _number(
                task, "completion_criteria.target_objective_value", target, integer=False
            )
        if completion.get("max_jobs_not_improving") is not None:
            patience = int(
                _number(
                    task,
                    "completion_criteria.max_jobs_not_improving",
                    completion["max_jobs_not_improving"],
                    integer=True,
                )
            )
            if patience < 3:
                raise ValueError(
                    f"{task}: completion_criteria.max_jobs_not_improving must be >= 3, got {patience}"
                )
            criteria["BestObjectiveNotImproving"] = {"MaxNumberOfTrainingJobsNotImproving": patience}
        if completion.get("complete_on_convergence") is not None:
            enabled = "Enabled" if completion["complete_on_convergence"] else "Disabled"
            criteria["ConvergenceDetected"] = {"CompleteOnConvergence": enabled}
        return criteria

    # -- the plan ------------------------------------------------------------------------------------------

    def build(self, context: Any) -> JobPlan:
        region = self.hook.region
        check_region(region)
        definition, uploads = self.training.parts(region)
        # Tuning jobs take no keep-alive: they reuse clusters between their own trials by themselves
        # (service_behaviour.WARM_POOL_TUNING_SOURCE); the definition's warm pool is for training jobs.
        definition["ResourceConfig"].pop("KeepAlivePeriodInSeconds", None)
        tags = definition.pop("Tags", None)
        tuned = set(self.parameter_ranges)
        definition["StaticHyperParameters"] = {
            k: v for k, v in definition.pop("HyperParameters", {}).items() if k not in tuned
        }
        request: dict[str, Any] = {
            "HyperParameterTuningJobConfig": json.loads(json.dumps(self.tuning_config)),
            "TrainingJobDefinition": definition,
        }
        if self.warm_start_parents:
            request["WarmStartConfig"] = {
                "ParentHyperParameterTuningJobs": [
                    {"HyperParameterTuningJobName": str(p)} for p in self.warm_start_parents
                ],
                "WarmStartType": self.warm_start_type,
            }
        if tags:
            request["Tags"] = tags
        facts = {
            "distribution": self.training.distribution,
            "allow_no_efa": self.training.cluster.allow_no_efa,
            "max_cost_usd": self.max_cost_usd,
            "price_per_hour": self.price_per_hour,
        }
        return JobPlan(request, tuple(_in_definition(u) for u in uploads), facts=facts)

    def total_jobs(self, request: Mapping[str, Any]) -> int:
        config = request["HyperParameterTuningJobConfig"]
        jobs = config["ResourceLimits"].get("MaxNumberOfTrainingJobs")
        return int(jobs) if jobs else grid_size(config.get("ParameterRanges") or {})

    def preflight(self, plan: JobPlan, context: Any) -> None:
        request, facts, region = plan.request, plan.facts, self.hook.region
        errors = tuning_config_errors(request["HyperParameterTuningJobConfig"])
        if errors:
            raise PreflightError(errors[0])
        definition = request["TrainingJobDefinition"]
        # Region, EFA, spot, FSx, volume key and input checks of one training job hold for every trial.
        check_training(self.hook.s3, region, definition, plan)
        # The ceiling is the whole search's: every trial may run to its time limit.
        search = check_search_cost(
            definition, self.total_jobs(request), facts["max_cost_usd"], facts["price_per_hour"], region
        )
        log_cost(self.log, "Worst-case cost of the whole search", search, facts["max_cost_usd"])
        for parent in (request.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
            parent_name = parent["HyperParameterTuningJobName"]
            if self.engine().describe(parent_name) is None:
                raise PreflightError(f"warm_start_parents: tuning job {parent_name!r} does not exist")

    # -- the result --------------------------------------------------------------------------------------

    def result(self, engine: Any, description: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The XCom value.

        :return: ``job_name``, ``job_arn``, ``status``, ``best_training_job``, ``best_hyperparameters``
            (decoded from JSON), ``objective``, ``objective_type``, ``objective_value``,
            ``model_artifacts`` (the best job's ``model.tar.gz`` URI), ``training_job_counts`` and
            ``leaderboard`` (the best ``leaderboard_size`` trials: ``training_job``,
            ``hyperparameters``, ``objective_value``, ``status``); JSON-safe.
        """
        out = engine.result(description)
        out["best_hyperparameters"] = decode_hyperparameters(out.get("best_hyperparameters") or {})
        out["objective_type"] = self.objective_type
        out["model_artifacts"] = None
        conn = self.hook.conn
        if out.get("best_training_job"):
            best = conn.describe_training_job(TrainingJobName=out["best_training_job"])
            out["model_artifacts"] = (best.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        listed = conn.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=out["job_name"],
            SortBy="FinalObjectiveMetricValue",
            SortOrder="Descending" if self.objective_type == "Maximize" else "Ascending",
            MaxResults=self.leaderboard_size,
        )
        out["leaderboard"] = [
            {
                "training_job": s["TrainingJobName"],
                "hyperparameters": decode_hyperparameters(s.get("TunedHyperParameters") or {}),
                "objective_value": (s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
                "status": s["TrainingJobStatus"],
            }
            for s in listed.get("TrainingJobSummaries") or []
        ]
        self.log.info("%s", leaderboard_text(out))
        return out
