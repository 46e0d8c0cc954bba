"""The emulator's route table: (method, path template, answer), first match wins.  Data Science
routes (``ds``) run under the emulator's lock; Object Storage and inference do not."""

from __future__ import annotations

from . import ads_api, catalog, deployments, inference, jobs, scaling, storage
from .common import ds, route

ROUTES = [
    ds("GET", "/modelDeploymentShapes", catalog.list_shapes),
    ds("GET", "/models", catalog.list_models),
    ds("POST", "/models", jobs.create_model),
    ds("GET", "/models/{model_id}", catalog.get_model),
    ds("PUT", "/models/{model_id}", jobs.update_model),
    ds("DELETE", "/models/{model_id}", jobs.delete_model),
    ds("GET", "/models/{model_id}/provenance", jobs.get_provenance),
    ds("PUT", "/models/{model_id}/provenance", jobs.update_provenance),
    ds("POST", "/models/{model_id}/provenance", jobs.create_provenance),
    ds("PUT", "/models/{model_id}/artifact", jobs.put_artifact),
    ds("GET", "/models/{model_id}/artifact/content", jobs.get_artifact),
    ds("HEAD", "/models/{model_id}/artifact/content", jobs.get_artifact),
    ds("POST", "/modelVersionSets", jobs.create_version_set),
    ds("GET", "/modelVersionSets", jobs.list_version_sets),
    ds("GET", "/modelVersionSets/{mvs_id}", jobs.get_version_set),
    ds("DELETE", "/modelVersionSets/{mvs_id}", jobs.delete_version_set),
    ds("GET", "/models/{model_id}/definedMetadata/{key}/artifact/content", catalog.get_metadatum),
    ds("POST", "/modelGroups", deployments.create_group),
    ds("GET", "/modelGroups", deployments.list_groups),
    ds("GET", "/modelGroups/{group_id}", deployments.get_group),
    ds("DELETE", "/modelGroups/{group_id}", deployments.delete_group),
    ds("POST", "/modelDeployments", deployments.create_deployment),
    ds("GET", "/modelDeployments", deployments.list_deployments),
    ds("GET", "/modelDeployments/{deployment_id}", deployments.get_deployment),
    ds("DELETE", "/modelDeployments/{deployment_id}", deployments.delete_deployment),
    ds("PUT", "/modelDeployments/{deployment_id}", deployments.update_deployment),
    ds("POST", "/modelDeployments/{deployment_id}/actions/activate", deployments.activate),
    ds("POST", "/modelDeployments/{deployment_id}/actions/deactivate", deployments.deactivate),
    ds("GET", "/modelDeployments/{deployment_id}/models/modelState", deployments.model_states),
    ds("GET", "/workRequests", deployments.list_work_requests),
    ds("GET", "/workRequests/{work_request_id}", deployments.get_work_request),
    ds("GET", "/workRequests/{work_request_id}/logs", ads_api.work_request_logs),
    ds("GET", "/workRequests/{work_request_id}/errors", ads_api.work_request_errors),
    ds("GET", "/containers", ads_api.list_containers),
    route("POST", ads_api.SEARCH + "/resources", ads_api.search_resources, locked=True),
    ds("POST", "/jobs", jobs.create_job),
    ds("GET", "/jobs", jobs.list_jobs),
    ds("GET", "/jobs/{job_id}", jobs.get_job),
    ds("DELETE", "/jobs/{job_id}", jobs.delete_job),
    ds("POST", "/jobRuns", jobs.create_job_run),
    ds("GET", "/jobRuns", jobs.list_job_runs),
    ds("GET", "/jobRuns/{job_run_id}", jobs.get_job_run),
    ds("DELETE", "/jobRuns/{job_run_id}", jobs.delete_job_run),
    ds("POST", "/jobRuns/{job_run_id}/actions/cancelJobRun", jobs.cancel_job_run),
    route("GET", "/n", storage.namespace),
    route("PUT", "/n/{namespace}/b/{bucket}/o/{name}", storage.put_object),
    route("GET", "/n/{namespace}/b/{bucket}/o/{name}", storage.get_object),
    route("HEAD", "/n/{namespace}/b/{bucket}/o/{name}", storage.get_object),
    route("GET", "/n/{namespace}/b/{bucket}/o", storage.list_objects),
    route(
        "POST", scaling.MONITORING + "/metrics/actions/summarizeMetricsData", inference.summarize_metrics, locked=True
    ),
    route("POST", "/{deployment_id}/predict", inference.predict),
    route("POST", "/{deployment_id}/predictWithResponseStream", inference.predict),
]
