"""OCI model deployments and the model groups they run: create (multi-model, stacked or single),
read back as :class:`Deployment` with per-model states and the progress of the operation under way,
activate/deactivate/delete, live model updates (a new group replaces the old), and the groups left
behind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ...catalog import bundled_catalog
from ...domain import (
    Deployment,
    DeploymentUpdate,
    ModelGroupVersion,
    ModelState,
    ValidatedDeployment,
    served_models,
)
from ...errors import AquaLabError, Conflict, InvalidInput, NotFound, Problem, Unsupported, UpstreamError
from ...planning import payloads
from . import model_group_versions as versions
from .artifacts import OciModels, artifact_uri
from .clients import LISTS, NAME, OciClients
from .scaling import OciScaling
from .wire import to_deployment

STATES = {"SUCCESS": "ACTIVE", "FAILED": "FAILED", "INCONSISTENT": "STARTING"}


def _gpus_of_shape(shape: str) -> int:
    found = bundled_catalog().shapes.find(shape)
    return found.gpu_count if found else 1


class OciDeployments:
    def __init__(self, clients: OciClients, models: OciModels, scaling: OciScaling):
        self.c, self.models, self.scaling = clients, models, scaling
        self._groups: dict[str, Any] = {}  # model group id → SDK ModelGroup (immutable once made)
        self._lock = threading.Lock()
        self.history = versions.GroupHistory(clients, self._group, self._forget)

    def where(self, compartment_id: str | None, project_id: str | None) -> tuple[str, str]:
        """The request's compartment and project, else the configured ones; a project is required."""
        project = project_id or self.c.settings.project_id
        if not project:
            raise InvalidInput(
                Problem(
                    "project_id",
                    "no Data Science project given",
                    "pass --project_id (REST: project_id), set c.AquaLab.project_id or AQUA_LAB_PROJECT_OCID",
                )
            )
        return compartment_id or self.c.settings.compartment_id, project

    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment:
        spec = deployment.spec
        compartment, project = self.where(spec.compartment_id, spec.project_id)
        image = spec.container_image_uri or self.c.settings.container_image
        if spec.deployment_type == "SINGLE":
            first = deployment.models[0]
            body = payloads.model_deployment_request(
                deployment, image, compartment, project, model_artifact_prefix=self.models.artifact_path(first.model_id)
            )
        else:
            paths = {m.model_id: self.models.artifact_path(m.model_id) for m in deployment.models}
            uris = {m.model_id: artifact_uri(self.models.raw_model(m.model_id)) for m in deployment.models}
            group_body = payloads.model_group_request(deployment, paths, compartment, project, uris)
            group = self.c.call(
                "create model group",
                self.c.ds.create_model_group,
                self.c.sdk(group_body, "CreateBaseModelGroupDetails"),
            ).data
            body = payloads.model_deployment_request(deployment, image, compartment, project, model_group_id=group.id)
            try:
                created = self.c.call(
                    "create model deployment",
                    self.c.ds.create_model_deployment,
                    self.c.sdk(body, "CreateModelDeploymentDetails"),
                ).data
            except AquaLabError:
                self._drop_group(group.id)  # refused (quota, policy): leave no orphan group behind
                raise
            return self._created(created, group)
        created = self.c.call(
            "create model deployment",
            self.c.ds.create_model_deployment,
            self.c.sdk(body, "CreateModelDeploymentDetails"),
        ).data
        return self._created(created, None)

    def _created(self, created: Any, group: Any | None) -> Deployment:
        """The deployment just made, read back; when that read fails the deployment still exists
        (and runs up): it is described from the create's own answer, with a warning saying how to
        follow it, so its OCID is never lost and the create is not run twice."""
        try:
            return self.get_deployment(created.id)
        except AquaLabError as exc:
            deployment = to_deployment(created, group, 0, _gpus_of_shape, NAME, self.c.auth.region)
            deployment.scaling = self.scaling.observe(created)
            deployment.warnings.append(
                f"deployment {created.id} was created ({created.lifecycle_state}) but reading it back failed: "
                f"{exc}; it goes on: aqua-lab deployment get --model_deployment_id {created.id}"
            )
            return deployment

    def _drop_group(self, group_id: str) -> None:
        try:
            self.c.call("delete model group", self.c.ds.delete_model_group, group_id)
        except AquaLabError:
            pass  # best effort: `model_group list` shows what is left

    def _forget(self, group_id: str) -> None:
        with self._lock:
            self._groups.pop(group_id, None)

    def _group(self, group_id: str) -> Any | None:
        # a group's members never change (an update makes a new group): read each one once, so a
        # wait polls the deployment and its own work request, not the group again and again
        with self._lock:
            cached = self._groups.get(group_id)
        if cached is not None:
            return cached
        try:
            group = self.c.call("get model group", self.c.ds.get_model_group, group_id).data
        except (NotFound, UpstreamError):
            return None
        if group.lifecycle_state == "ACTIVE":  # a CREATING one will change: read it again next time
            with self._lock:
                self._groups[group_id] = group
        return group

    def _to_deployment(self, md: Any, live: bool = False) -> Deployment:
        config = md.model_deployment_configuration_details
        group = None
        if config.deployment_type == "MODEL_GROUP":
            group = self._group(config.model_group_configuration_details.model_group_id)
        deployment = to_deployment(md, group, self._progress(md, live), _gpus_of_shape, NAME, self.c.auth.region)
        deployment.scaling = self.scaling.observe(md)
        if deployment.scaling and deployment.shape_info:  # ADS's instance_count: the instances running now
            deployment.shape_info.instance_count = deployment.scaling.instance_count
        return deployment

    def _progress(self, md: Any, live: bool = False) -> int:
        """Percent done of the operation under way.  ``live``: also for an ACTIVE deployment, which
        a LIVE update keeps ACTIVE while its work request runs (a get asks; a list does not)."""
        if md.lifecycle_state == "ACTIVE" and not live:
            return 100
        if md.lifecycle_state not in ("CREATING", "UPDATING", "ACTIVE"):
            return 0
        try:
            requests = self.c.ds.list_work_requests(
                md.compartment_id or self.c.settings.compartment_id, resource_id=md.id
            )
        except Exception:  # progress is a nicety: never fail a get because of it
            return 100 if md.lifecycle_state == "ACTIVE" else 0
        # the operation under way is the latest work request; earlier ones (the finished create
        # under an update) would read 100 % from the first poll
        ordered = sorted(enumerate(requests.data), key=lambda iw: (str(iw[1].time_accepted or ""), iw[0]))
        latest = ordered[-1][1] if ordered else None
        if md.lifecycle_state == "ACTIVE":
            running = latest is not None and latest.status in ("ACCEPTED", "IN_PROGRESS")
            return int(latest.percent_complete or 0) if running else 100
        return int(latest.percent_complete or 0) if latest else 0

    def list_deployments(self) -> list[Deployment]:

        rows = self.c.list_all(
            "list model deployments", self.c.ds.list_model_deployments, self.c.settings.compartment_id
        )
        return [
            self._to_deployment(md)
            for md in rows
            if "OCI_AQUA" in (md.freeform_tags or {}) and md.lifecycle_state != "DELETED"
        ]

    def get_deployment(self, deployment_id: str) -> Deployment:
        md = self.c.call("get deployment", self.c.ds.get_model_deployment, deployment_id).data
        deployment = self._to_deployment(md, live=True)
        if deployment.state in ("ACTIVE", "NEEDS_ATTENTION", "CREATING"):
            deployment.model_states = self._model_states(md, deployment)
        return deployment

    def _model_states(self, md: Any, deployment: Deployment) -> list[ModelState]:
        """OCI reports states per member model; name them by the served names users know."""
        try:
            rows = self.c.call(
                "list model states", self.c.ds.list_model_deployment_model_states, md.id, self.c.settings.compartment_id
            ).data
        except UpstreamError:
            return []
        served: dict[str, list[str]] = {}
        for name, model_id in served_models(deployment.models):
            served.setdefault(model_id, []).append(name)
        return [
            ModelState(model_name=name, model_id=r.model_id, state=STATES.get(r.state, "STARTING"))
            for r in rows
            for name in served.get(r.model_id, [r.inference_key or r.display_name or r.model_id])
        ]

    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self.get_deployment(deployment_id).model_states

    def _action(self, deployment_id: str, what: str, fn: Callable[..., Any]) -> Deployment:
        try:
            self.c.call(f"{what} deployment", fn, deployment_id)
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(str(exc)) from None
            if exc.status == 404:  # not the IAM advice OCI's 404 carries: most often it is gone already
                gone = " (already deleted?)" if what == "delete" else ""
                raise NotFound(
                    "deployment", deployment_id, f"not found{gone}; `{LISTS['deployment']}` lists the ones there are"
                ) from None
            raise
        return self.get_deployment(deployment_id)

    def activate(self, deployment_id: str) -> Deployment:
        return self._action(deployment_id, "activate", self.c.ds.activate_model_deployment)

    def deactivate(self, deployment_id: str) -> Deployment:
        return self._action(deployment_id, "deactivate", self.c.ds.deactivate_model_deployment)

    def delete(self, deployment_id: str) -> Deployment:
        return self._action(deployment_id, "delete", self.c.ds.delete_model_deployment)

    def update_models(self, deployment_id: str, deployment: ValidatedDeployment) -> Deployment:
        """A new version of the deployment's model group — a CLONE of the one it runs, in that group's
        version history (:mod:`.model_group_versions`) — then the deployment moves to it: LIVE when
        only the group changes, ZDT otherwise; the answer's ``update`` says which and why."""
        current = self.c.call("get deployment", self.c.ds.get_model_deployment, deployment_id).data
        config = current.model_deployment_configuration_details
        if config.deployment_type != "MODEL_GROUP":
            raise Conflict(f"{deployment_id} is not a model-group deployment; only those can be updated live")
        spec = deployment.spec
        shape = config.infrastructure_configuration_details.instance_configuration.instance_shape_name
        if spec.instance_shape != shape:
            raise InvalidInput(
                Problem(
                    "instance_shape",
                    f"the deployment runs on {shape}, not {spec.instance_shape}; a live update keeps the shape",
                    f"pass --instance_shape {shape}, or create a new deployment on {spec.instance_shape}",
                )
            )
        compartment, project = current.compartment_id, current.project_id
        paths = {m.model_id: self.models.artifact_path(m.model_id) for m in deployment.models}
        uris = {m.model_id: artifact_uri(self.models.raw_model(m.model_id)) for m in deployment.models}
        create_body = payloads.model_group_request(deployment, paths, compartment, project, uris)
        old = self._group(config.model_group_configuration_details.model_group_id)
        env = getattr(config.environment_configuration_details, "environment_variables", None) or {}
        new_env = {**env, **spec.env_var}
        extra: dict[str, Any] = {}
        if new_env != env:
            extra["environmentConfigurationDetails"] = {
                "environmentConfigurationType": config.environment_configuration_details.environment_configuration_type,
                "environmentVariables": new_env,
            }
        names: dict[str, Any] = {}
        if spec.display_name and spec.display_name != current.display_name:
            names["displayName"] = spec.display_name
        if spec.description is not None and spec.description != current.description:
            names["description"] = spec.description
        if old is not None and versions.same_group(old, create_body):
            return self._update_in_place(current, old, extra, names)
        kind, reason = versions.update_type(old, create_body, new_env != env)
        group_body = create_body
        if old is not None and old.model_group_details.type == create_body["modelGroupDetails"]["type"]:
            history = self.history.history_of(old, current.display_name)
            group_body = versions.clone_request(create_body, old, history)
        group = self.c.call(
            "create model group",
            self.c.ds.create_model_group,
            self.c.sdk(group_body, "CreateBaseModelGroupDetails"),
        ).data
        try:
            self._switch(current, group.id, kind, extra, names)
        except AquaLabError:
            self._drop_group(group.id)
            raise
        updated = self.get_deployment(deployment_id)
        updated.update = DeploymentUpdate(
            update_type=kind, reason=reason, model_group_id=group.id, version=group.version_id
        )
        return updated

    def _update_in_place(self, current: Any, group: Any, env: dict[str, Any], names: dict[str, Any]) -> Deployment:
        """An update whose models make the live group again: no clone, no new version.  The
        environment lives on the deployment, not the group, so a new one is a ZDT update that keeps
        the group; a name or description alone is a change of the deployment's own fields."""
        if env:
            self._switch(current, group.id, "ZDT", env, names)
            kind = "ZDT"
            reason = (
                "only the environment variables change (they are the deployment's, not the model group's): "
                "the containers restart in a zero-downtime replacement on the same model group, no new version"
            )
        else:
            if names:
                self.c.update_deployment(current.id, names)
            changed = " and ".join(k.replace("displayName", "name") for k in names) or "nothing"
            kind = "NONE"
            reason = f"{changed} changes, not the models: the deployment's fields are updated, no new group version"
        updated = self.get_deployment(current.id)
        updated.update = DeploymentUpdate(
            update_type=kind, reason=reason, model_group_id=group.id, version=group.version_id or 1
        )
        return updated

    def _switch(
        self, current: Any, group_id: str, kind: str, config: dict[str, Any], names: dict[str, Any] | None = None
    ) -> None:
        """Move the deployment ``current`` to the group ``group_id`` with update type ``kind``."""
        body: dict[str, Any] = {
            "modelDeploymentConfigurationDetails": {
                "deploymentType": "MODEL_GROUP",
                "updateType": kind,
                "modelGroupConfigurationDetails": {"modelGroupId": group_id},
                **config,
            },
            # ADS finds a deployment's models (get, evaluation create) by this tag, not by the group
            # the deployment runs: it must follow the group, or ADS shows the old models and fails
            # once the old group is deleted
            "freeformTags": {**(current.freeform_tags or {}), "aqua_model_id": group_id},
            **(names or {}),
        }
        self.c.update_deployment(current.id, body)

    def _live_group(self, deployment_id: str) -> tuple[Any, str]:
        current = self.c.call("get deployment", self.c.ds.get_model_deployment, deployment_id).data
        config = current.model_deployment_configuration_details
        if config.deployment_type != "MODEL_GROUP":
            raise Unsupported(NAME, f"{deployment_id} runs a single model, not a model group: it has no group versions")
        return current, config.model_group_configuration_details.model_group_id

    def versions(self, deployment_id: str) -> list[ModelGroupVersion]:
        _, group_id = self._live_group(deployment_id)
        return self.history.versions(group_id)

    def rollback(self, deployment_id: str, version: int) -> Deployment:
        """Back to an earlier version of the deployment's group: a LIVE update to that group."""
        current, live_id = self._live_group(deployment_id)
        known = self.history.versions(live_id)
        target = next((v for v in known if v.version == version), None)
        listing = f"aqua-lab deployment versions {deployment_id}"
        if target is None:
            raise NotFound(
                "model-group version",
                str(version),
                f"deployment {deployment_id} has versions {[v.version for v in known]}; pick one of them ({listing})",
                field="version",
            )
        if target.live:
            raise Conflict(
                Problem(
                    "version",
                    f"{version} is live already ({target.model_group_id})",
                    f"pick another from `{listing}`",
                )
            )
        try:
            self._switch(current, target.model_group_id, "LIVE", {})
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(str(exc)) from None
            raise
        updated = self.get_deployment(deployment_id)
        updated.update = DeploymentUpdate(
            update_type="LIVE",
            reason=f"a rollback changes only the model group: version {version}'s members are loaded in place",
            model_group_id=target.model_group_id,
            version=version,
        )
        return updated

    def _group_users(self, compartments: Sequence[str]) -> dict[str, list[str]]:
        """Model group id → the deployments using it, in these compartments.  A group may serve
        several deployments; one is in use by the group it runs and by the group its
        ``aqua_model_id`` tag names (during an update the new one, before the deployment switches)."""
        users: dict[str, list[str]] = {}
        for compartment in dict.fromkeys(compartments):
            rows = self.c.list_all("list model deployments", self.c.ds.list_model_deployments, compartment)
            for md in rows:
                config = md.model_deployment_configuration_details
                if md.lifecycle_state == "DELETED" or config.deployment_type != "MODEL_GROUP":
                    continue
                tagged = (md.freeform_tags or {}).get("aqua_model_id")
                for group_id in dict.fromkeys([config.model_group_configuration_details.model_group_id, tagged]):
                    if group_id:
                        users.setdefault(group_id, []).append(md.id)
        return users

    def list_model_groups(self) -> list[dict]:
        """The compartment's model groups and the deployments using each: an update replaces its
        group, so the old one is left for ``model_group delete`` once the update is done."""
        groups = self.c.list_all("list model groups", self.c.ds.list_model_groups, self.c.settings.compartment_id)
        users = self._group_users([self.c.settings.compartment_id])
        return [
            {
                "id": g.id,
                "display_name": g.display_name,
                "state": g.lifecycle_state,
                "created_on": str(g.time_created),
                "in_use_by": users.get(g.id, []),
                "version": g.version_id,
            }
            for g in groups
            if g.lifecycle_state != "DELETED"
        ]

    def delete_model_group(self, group_id: str) -> dict:
        """Refused while any deployment uses the group — looked for in the group's own compartment
        too (a deployment elsewhere may use it), and OCI's own refusal kept as a Conflict."""
        group = self.c.call("get model group", self.c.ds.get_model_group, group_id).data
        users = self._group_users([self.c.settings.compartment_id, group.compartment_id]).get(group_id)
        if users:
            raise Conflict(
                f"model group {group_id} is still used by deployment {', '.join(users)}; it is kept — "
                "delete those deployments first"
            )
        try:
            self.c.call("delete model group", self.c.ds.delete_model_group, group_id)
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(f"model group {group_id} is kept: {exc}") from None
            raise
        with self._lock:
            self._groups.pop(group_id, None)
        return {"id": group_id, "state": "DELETED"}

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        deployment = self.get_deployment(deployment_id)
        return (
            f"{deployment.display_name} is {deployment.state}. OCI keeps deployment logs in OCI Logging: "
            f"create the deployment with log_group_id and access_log_id/predict_log_id to see them there."
        )
