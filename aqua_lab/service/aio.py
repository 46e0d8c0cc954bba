"""The service's async face, for code on an event loop (the Jupyter server's handlers).

Every verb of :class:`~.facade.AquaLabService` as a coroutine: blocking verbs run through
:func:`~.executor.execute` (the one executor choice), chat verbs are async already and pass
through.  A handler reads ``await svc.get_deployment(id)`` and never sees a thread.

Identical reads that arrive while one is running share it (:class:`~.executor.SharedReads`): a
sidebar open in many tabs, or a burst of 100 ``GET deployments``, costs one platform call, not 100
threads' worth of work competing with the event loop for the GIL.  A read never joins one that
began before this face's last write, so a caller always sees its own changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..arena.models import BlindPair, BlindPairRequest, Leaderboard, Vote, VoteRequest, VoteSource
from ..domain import (
    CapacityInputs,
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentMetrics,
    DeploymentSpec,
    Evaluation,
    EvaluationConfig,
    EvaluationMetrics,
    EvaluationSpec,
    EvaluationStatus,
    MetricDescription,
    ModelInput,
    ModelState,
    Plan,
    ScalingChange,
    Shape,
    UploadedDataset,
    ValidatedDeployment,
)
from .datasets import DatasetRow, SavedDataset
from .executor import SharedReads, execute
from .facade import AquaLabService


class AsyncAquaLabService:
    def __init__(self, service: AquaLabService):
        self.sync = service
        self._reads = SharedReads()

    async def _write(self, fn, *args):
        try:
            return await execute(fn, *args)
        finally:
            self._reads.wrote()  # also when it failed: it may have changed something before failing

    @property
    def platform_name(self) -> str:
        return self.sync.platform_name

    # catalog and planning -------------------------------------------------------------------------

    async def shapes(self) -> list[Shape]:
        return await self._reads.run(self.sync.shapes)

    async def models(self) -> list[CatalogModel]:
        return await self._reads.run(self.sync.models)

    async def register_model(
        self, path: str, name: str | None = None, base_model_id: str | None = None
    ) -> CatalogModel:
        return await self._write(self.sync.register_model, path, name, base_model_id)

    async def unregister_model(self, model_id: str) -> CatalogModel:
        return await self._write(self.sync.unregister_model, model_id)

    async def model_input(self, model_id: str) -> ModelInput:
        return await execute(self.sync.model_input, model_id)

    async def plan(
        self,
        model_ids: Sequence[str],
        primary_model_id: str | None = None,
        shape: str | None = None,
        capacity: CapacityInputs | None = None,
    ) -> Plan:
        return await execute(self.sync.plan, model_ids, primary_model_id, shape, (), capacity)

    async def validate(self, spec: DeploymentSpec) -> ValidatedDeployment:
        return await execute(self.sync.validate, spec)

    # deployments ----------------------------------------------------------------------------------

    async def create_deployment(self, spec: DeploymentSpec) -> Deployment:
        return await self._write(self.sync.create_deployment, spec)

    async def list_deployments(self) -> list[Deployment]:
        return await self._reads.run(self.sync.list_deployments)

    async def get_deployment(self, deployment_id: str) -> Deployment:
        return await self._reads.run(self.sync.get_deployment, deployment_id)

    async def update_deployment(self, deployment_id: str, spec: DeploymentSpec) -> Deployment:
        return await self._write(self.sync.update_deployment, deployment_id, spec)

    async def activate(self, deployment_id: str) -> Deployment:
        return await self._write(self.sync.activate, deployment_id)

    async def deactivate(self, deployment_id: str) -> Deployment:
        return await self._write(self.sync.deactivate, deployment_id)

    async def delete(self, deployment_id: str) -> Deployment:
        return await self._write(self.sync.delete, deployment_id)

    async def model_states(self, deployment_id: str) -> list[ModelState]:
        return await self._reads.run(self.sync.model_states, deployment_id)

    async def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        return await execute(self.sync.logs, deployment_id, model_name, lines)

    async def update_scaling(self, deployment_id: str, change: ScalingChange) -> Deployment:
        return await self._write(self.sync.update_scaling, deployment_id, change)

    async def deployment_metrics(self, deployment_id: str, window_s: float = 300) -> DeploymentMetrics:
        return await execute(self.sync.deployment_metrics, deployment_id, window_s)

    # evaluations ----------------------------------------------------------------------------------

    async def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        return await self._write(self.sync.create_evaluation, spec)

    async def list_evaluations(self) -> list[Evaluation]:
        return await execute(self.sync.list_evaluations)

    async def get_evaluation(self, evaluation_id: str) -> Evaluation:
        return await execute(self.sync.get_evaluation, evaluation_id)

    async def cancel_evaluation(self, evaluation_id: str) -> Evaluation:
        return await execute(self.sync.cancel_evaluation, evaluation_id)

    async def delete_evaluation(self, evaluation_id: str) -> Evaluation:
        return await execute(self.sync.delete_evaluation, evaluation_id)

    async def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        return await execute(self.sync.evaluation_report, evaluation_id, model, fmt)

    async def evaluation_charts(self, evaluation_id: str) -> dict[str, str]:
        return await execute(self.sync.evaluation_charts, evaluation_id)

    async def evaluation_status(self, evaluation_id: str) -> EvaluationStatus:
        return await execute(self.sync.evaluation_status, evaluation_id)

    async def evaluation_metrics(self, evaluation_id: str, model: str | None = None) -> EvaluationMetrics:
        return await execute(self.sync.evaluation_metrics, evaluation_id, model)

    async def evaluation_config(self) -> EvaluationConfig:
        return await self._reads.run(self.sync.evaluation_config)

    async def upload_dataset(self, filename: str, content: str) -> UploadedDataset:
        return await execute(self.sync.upload_dataset, filename, content)

    async def save_dataset_row(self, name: str, row: DatasetRow) -> SavedDataset:
        return await self._write(self.sync.save_dataset_row, name, row)

    async def list_datasets(self) -> list[SavedDataset]:
        return await execute(self.sync.list_datasets)

    async def get_dataset(self, name: str) -> str:
        return await execute(self.sync.get_dataset, name)

    async def supported_metrics(self) -> list[MetricDescription]:
        # the first call imports the scorers (numpy, sacrebleu): not on the event loop
        return await execute(self.sync.supported_metrics)

    # chat -----------------------------------------------------------------------------------------

    def chat_events(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[str]:
        return self.sync.chat_events(deployment_id, request)

    def chat_stream(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[dict[str, Any]]:
        return self.sync.chat_stream(deployment_id, request)

    async def chat(self, deployment_id: str, request: ChatRequest) -> dict[str, Any]:
        return await self.sync.chat(deployment_id, request)

    def compare(self, deployment_id: str, request: CompareRequest) -> AsyncIterator[dict[str, Any]]:
        return self.sync.compare(deployment_id, request)

    # choosing between models ----------------------------------------------------------------------

    async def blind_pair(self, deployment_id: str, request: BlindPairRequest) -> BlindPair:
        return await self.sync.blind_pair(deployment_id, request)

    async def vote(self, deployment_id: str, request: VoteRequest, voter: str | None = None) -> Vote:
        return await execute(self.sync.vote, deployment_id, request, voter)

    async def get_vote(self, deployment_id: str, vote_id: str) -> Vote:
        return await execute(self.sync.get_vote, deployment_id, vote_id)

    async def votes(self, deployment_id: str, source: VoteSource = "both") -> list[Vote]:
        return await execute(self.sync.votes, deployment_id, source)

    async def leaderboard(self, deployment_id: str, source: VoteSource = "votes", resamples: int = 200) -> Leaderboard:
        return await execute(self.sync.leaderboard, deployment_id, source, resamples)

    async def export_votes(self, deployment_id: str, fmt: str = "jsonl", source: VoteSource = "both") -> str:
        return await execute(self.sync.export_votes, deployment_id, fmt, source)
