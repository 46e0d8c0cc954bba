"""Evaluations (the options of ``ads aqua evaluation create``), their progress, metrics and report inputs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _no_nul(value: str) -> str:
    # the OS refuses such a path with a ValueError deep inside open()/stat(): refuse it here, by name
    if "\x00" in value:
        raise ValueError("a path cannot contain a NUL character (\\x00)")
    return value


#: a file system path (or an oci:// URI) given in a request
PathText = Annotated[str, AfterValidator(_no_nul)]


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["bertscore", "rouge", "bleu", "perplexity_score", "text_readability", "pairwise_judge", "judge_score"]
    args: dict[str, Any] = Field(default_factory=dict)


class EvaluationSpec(BaseModel):
    """One model of a deployment evaluated on a dataset (one evaluation per model of a multi-model
    deployment, as the seed says)."""

    model_config = ConfigDict(extra="forbid")

    evaluation_source_id: str = Field(description="the deployment")
    evaluation_name: str = Field(min_length=1)
    dataset_path: PathText = Field(
        description="JSONL of prompt, completion rows: oci://bucket@namespace/path/dataset.jsonl on OCI; "
        "a file path, or sample (the bundled 36 rows), on the local platform"
    )
    report_path: PathText = Field(description="oci://bucket@namespace/report/path/ on OCI; a local directory on local")
    model_parameters: dict[str, Any] = Field(
        description='sampling parameters; "model" (served name) picks one model (required on OCI for multi-model; '
        "local without it evaluates every model of the deployment side by side)"
    )
    shape_name: str = "VM.Standard.E4.Flex"
    block_storage_size: int = Field(default=50, ge=50)
    compartment_id: str | None = None
    project_id: str | None = None
    evaluation_description: str | None = None
    memory_in_gbs: float | None = Field(default=None, gt=0)
    ocpus: float | None = Field(default=None, gt=0)
    experiment_id: str | None = None
    experiment_name: str | None = None
    experiment_description: str | None = None
    log_group_id: str | None = None
    log_id: str | None = None
    metrics: list[MetricSpec] = Field(default_factory=lambda: [MetricSpec(name="bertscore"), MetricSpec(name="rouge")])
    force_overwrite: bool = False
    container_image_uri: str | None = None
    runner: Literal["service", "notebook"] = Field(
        default="service",
        description="who runs it: service (the platform's own: AQUA's evaluation job on OCI, aqua_lab's runner "
        "locally) or notebook (aqua_lab's runner on this machine calling the deployment, signed on OCI: every "
        "metric, the judge's included; report_path and dataset_path are then paths here)",
    )

    @model_validator(mode="after")
    def _log_has_its_group(self) -> EvaluationSpec:
        if self.log_id and not self.log_group_id:
            raise ValueError("log_id needs log_group_id: pass the log group the log belongs to")
        return self


class MetricDescription(BaseModel):
    """A metric an evaluation accepts (``metrics: [{"name", "args"}]``), as ``GET evaluations/metrics`` lists it."""

    name: str
    label: str
    keys: list[str] = Field(description="per-row score keys (the keys of a report's data rows)")
    args: dict[str, Any] = Field(description="accepted args and their defaults")
    higher_is_better: bool = True
    description: str = ""


class ModelProgress(BaseModel):
    """One model's share of an evaluation."""

    model: str
    state: str = Field(description="ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED")
    rows_done: int = 0
    rows_total: int = 0
    rows_failed: int = 0
    eta_s: float | None = Field(default=None, description="seconds left at the current pace")
    report: str | None = Field(default=None, description="report.json once scored")
    evaluation_id: str | None = Field(default=None, description="OCI: this model's evaluation (model OCID)")
    details: str | None = Field(default=None, description="OCI: the job run's lifecycle details")


class ResourceRef(BaseModel):
    """An OCI resource as AQUA names it in its outputs (``AquaResourceIdentifier``)."""

    id: str = ""
    name: str = ""
    url: str = ""


class Evaluation(BaseModel):
    id: str = Field(
        description="OCI: the evaluation model's OCID (as ADS; for a comparison, its first member's); "
        "local: the local evaluation"
    )
    job_id: str | None = None
    name: str
    state: str = Field(description="ADS lifecycle words: ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED")
    deployment_id: str
    model: str = Field(description="served name; for a comparison of several models, the first")
    report_path: str
    created_on: str | None = None
    models: list[ModelProgress] = Field(default_factory=list, description="per-model progress (local platform)")
    metrics: list[MetricSpec] = Field(default_factory=list)
    dataset_path: str | None = None
    details: str | None = None
    comparison_report: str | None = Field(default=None, description="comparison.html once scored")
    # what ADS's AquaEvaluationSummary/Detail carry (OCI)
    aqua_service_model: bool = Field(default=False, description="the evaluated deployment serves AQUA service models")
    description: str | None = None
    created_by: str | None = None
    compartment_id: str | None = None
    project_id: str | None = None
    console_url: str | None = Field(default=None, description="the evaluation model in the OCI console")
    endpoint: str | None = Field(default=None, description="the evaluated deployment's endpoint")
    shape_info: dict[str, Any] | None = Field(
        default=None, description="the job's instance_shape, instance_count, ocpus, memory_in_gbs"
    )
    tags: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict, description="model_params as ADS stores them")
    experiment: ResourceRef | None = Field(default=None, description="the model version set")
    source: ResourceRef | None = Field(default=None, description="the evaluated deployment")
    job: ResourceRef | None = Field(default=None, description="the job run")
    log_group: ResourceRef | None = None
    log: ResourceRef | None = None


class EvaluationStatus(BaseModel):
    """The light poll of a running evaluation: its state and each model's rows done / total and ETA
    (``lifecycle_state``/``lifecycle_details`` are ADS's names for ``state``/``details``)."""

    id: str
    name: str
    state: str = Field(description="ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED, CANCELED")
    lifecycle_state: str = Field(description="ADS's name for state")
    lifecycle_details: str | None = Field(default=None, description="why it failed or was canceled")
    finished: bool = Field(description="state is SUCCEEDED, FAILED or CANCELED: polling can stop")
    rows_done: int = Field(description="answers generated, all models together")
    rows_total: int
    eta_s: float | None = Field(default=None, description="seconds until the slowest model is done, at its pace")
    models: list[ModelProgress] = Field(default_factory=list)
    # ADS's get_status names its job's logs so; empty where the platform keeps no log (local: the job's log file)
    log_id: str = ""
    log_url: str = ""
    loggroup_id: str = ""
    loggroup_url: str = ""


class MetricStats(BaseModel):
    """One score key over a model's rows (the numbers behind a report's summary line)."""

    count: int = 0
    median: float | None = None
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None


class MetricSummaryLine(BaseModel):
    """A report's ``metric_summary_result`` entry, ADS's wording: ``Median F1: 0.598 (SD: 0.018)``."""

    metric: str
    label: str | None = None
    score: str
    grade: str | None = None


class MetricScores(BaseModel):
    """One metric of one model: its score keys' statistics and corpus-level figures."""

    name: str
    label: str
    keys: list[str]
    headline: str | None = Field(default=None, description="the key the summary line reports")
    higher_is_better: bool = True
    summary: dict[str, MetricStats] = Field(description="per score key")
    corpus: dict[str, Any] | None = Field(default=None, description="corpus-level scores (e.g. BLEU's)")
    note: str | None = None


class ModelEvaluationMetrics(BaseModel):
    model: str
    metric_summary_result: list[MetricSummaryLine]
    metrics: list[MetricScores]
    generation: dict[str, Any] = Field(default_factory=dict, description="latency and token figures")


class EvaluationMetrics(BaseModel):
    """Per model the report's scores without its rows: enough for a table or a chart."""

    id: str
    name: str
    state: str
    models: list[ModelEvaluationMetrics]


class UploadedDataset(BaseModel):
    """A JSONL dataset sent to the server and stored on its machine: pass ``dataset_path`` to create."""

    dataset_path: str = Field(description="where the server stored it: the dataset_path of an evaluation")
    filename: str
    rows: int
    bytes: int
    categories: dict[str, int] = Field(default_factory=dict, description="rows per category (none: uncategorised)")


class EvaluationConfig(BaseModel):
    """What a form needs to start an evaluation (ADS's ``evaluation/config`` answers ``model_params``,
    ``shape`` and ``default``; the metrics and where reports go by default are aqua_lab's)."""

    model_params: dict[str, Any] = Field(description="default sampling parameters")
    shape: dict[str, dict[str, Any]] = Field(default_factory=dict, description="job shapes (OCI) by name")
    default: dict[str, Any] = Field(default_factory=dict, description="the default job shape")
    metrics: list[MetricDescription]
    default_metrics: list[str]
    reports_dir: str | None = Field(default=None, description="a directory for reports on the server's machine")
    sample_rows: int = Field(description="rows of the bundled dataset (dataset_path: sample)")
    platform: str = Field(default="", description="the platform these defaults are for")
    progress: Literal["rows", "state"] = Field(
        default="rows",
        description="what a running evaluation reports per model: rows done/total (local), or only the job "
        "run's state (OCI: ACCEPTED, IN_PROGRESS, SUCCEEDED)",
    )
    fields: list[str] = Field(
        default_factory=list,
        description="EvaluationSpec fields only this platform uses (OCI: shape_name, block_storage_size, "
        "experiment_name, log_group_id, log_id, force_overwrite), so a form shows them only here",
    )
    report_path_hint: str = Field(default="", description="the form report_path takes here (a placeholder)")
    dataset_hint: str = Field(default="", description="what dataset_path accepts here (a placeholder)")
    dataset_note: str = Field(default="", description="what happens to a dataset file on this machine")
    judge_rubric: str = Field(
        default="", description="the judge metrics' rubric when args.rubric is left out (a form prefills it)"
    )
    judge_rubric_max_bytes: int = Field(default=0, description="the longest args.rubric accepted, in UTF-8 bytes")
