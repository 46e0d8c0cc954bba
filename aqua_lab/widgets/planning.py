"""Pick models and see how a shape's GPUs split between them."""

from __future__ import annotations

import ipywidgets as w
from traitlets import List, Unicode

from ..domain import CatalogModel, DeploymentSpec, Plan, ShapePlan
from ..errors import AquaLabError, InvalidInput
from ..service import AquaLabService
from .common import IDLE, colour, esc, full_width, message


class ModelPicker(w.VBox):
    """Searchable, filterable multi-select of a platform's models, with a primary-model choice."""

    selected = List(Unicode(), help="ids of the picked models, in pick order")
    primary = Unicode(allow_none=True, default_value=None)

    def __init__(self, service: AquaLabService, **kwargs):
        self.service = service
        self.models: list[CatalogModel] = service.models()
        self.search = w.Text(placeholder="search models…", layout=full_width())
        sources = sorted({m.source for m in self.models})
        tasks = sorted({m.task for m in self.models})
        self.source = w.Dropdown(options=["any source", *sources], description="Source")
        self.task = w.Dropdown(options=["any task", *tasks], description="Task")
        shapes = [s.name for s in service.shapes() if s.gpu_count]
        self.shape = w.Dropdown(options=["any shape", *shapes], description="Runs on")
        self.max_size = w.FloatText(value=0, description="≤ B params", tooltip="0: no limit")
        self.choices = w.SelectMultiple(rows=8, layout=full_width())
        self.primary_choice = w.Dropdown(options=[("no primary", None)], description="Primary")
        self.status = w.HTML()
        for control in (self.search, self.source, self.task, self.shape, self.max_size):
            control.observe(lambda _: self._filter(), names="value")
        self.choices.observe(self._on_choice, names="value")
        self.primary_choice.observe(lambda c: setattr(self, "primary", c["new"]), names="value")
        super().__init__(
            [
                self.search,
                w.HBox([self.source, self.task]),
                w.HBox([self.shape, self.max_size]),
                self.choices,
                self.primary_choice,
                self.status,
            ],
            **kwargs,
        )
        self._filter()

    def visible(self) -> list[CatalogModel]:
        text = self.search.value.strip().lower()
        out = []
        for m in self.models:
            if text and text not in m.name.lower() and text not in m.id.lower():
                continue
            if self.source.value != "any source" and m.source != self.source.value:
                continue
            if self.task.value != "any task" and m.task != self.task.value:
                continue
            if self.max_size.value and m.parameter_count_b and m.parameter_count_b > self.max_size.value:
                continue
            if self.shape.value != "any shape":
                config = self.service.model_input(m.id).config
                if config is None or self.shape.value not in config.configuration:
                    continue
            out.append(m)
        return out

    def _filter(self) -> None:
        keep = [m.id for m in self.visible()]
        picked = [i for i in self.selected if i not in keep]  # picks stay picked while filtering
        names = {m.id: m.name for m in self.models}
        self.choices.options = [(names[i], i) for i in picked + keep]
        self.choices.value = tuple(self.selected)
        self.status.value = message(f"{len(keep)} of {len(self.models)} models")

    def _on_choice(self, change) -> None:
        self.selected = list(change["new"])
        names = {m.id: m.name for m in self.models}
        current = self.primary if self.primary in self.selected else None
        self.primary_choice.options = [("no primary", None), *((names[i], i) for i in self.selected)]
        self.primary_choice.value = current

    def pick(self, *model_ids: str, primary: str | None = None) -> None:
        """Select models programmatically (by id or name), as a user's clicks would."""
        ids = [self.service.resolve_model(i).id for i in model_ids]
        self.search.value = ""
        self.selected = ids
        self._filter()
        self._on_choice({"new": tuple(ids)})
        if primary is not None:
            self.primary_choice.value = self.service.resolve_model(primary).id


class GpuSplit(w.VBox):
    """Every compatible shape as a row of GPU cells coloured by owner; the reasons for the others;
    per-model count overrides on one shape, validated as they change."""

    def __init__(self, service: AquaLabService, picker: ModelPicker | None = None, **kwargs):
        self.service = service
        self.picker = picker
        self.plan: Plan | None = None
        self._override_models: list[str] = []
        self.table = w.HTML()
        self.reasons = w.HTML()
        self.override_shape = w.Dropdown(description="Adjust on")
        self.overrides = w.VBox()
        # one click takes the plan's alternative: a split that fills more GPUs, the primary no longer first
        self.alternative = w.Button(icon="exchange", layout=w.Layout(display="none", width="auto"))
        self.alternative.on_click(lambda _: self.take_alternative())
        self.validation = w.HTML()
        self.override_shape.observe(lambda _: self._build_overrides(), names="value")
        super().__init__(
            [self.table, self.reasons, self.override_shape, self.overrides, self.alternative, self.validation],
            **kwargs,
        )
        if picker is not None:
            picker.observe(lambda _: self.refresh(), names=["selected", "primary"])

    def refresh(self, model_ids: list[str] | None = None, primary: str | None = None) -> None:
        ids = model_ids if model_ids is not None else (self.picker.selected if self.picker else [])
        primary = primary if primary is not None else (self.picker.primary if self.picker else None)
        if not ids:
            self.plan = None
            self.table.value = message("Pick one or more models to see how the GPUs split.")
            self.reasons.value = ""
            self.override_shape.options = []
            return
        try:
            self.plan = self.service.plan(ids, primary)
        except AquaLabError as exc:
            self.plan = None
            self.table.value = message(str(exc), "error")
            return
        self.table.value = self._render(self.plan)
        self.reasons.value = self._render_reasons(self.plan)
        current = self.override_shape.value
        self.override_shape.options = list(self.plan.gpu_allocation)
        if self.override_shape.options:  # keep the user's shape when it still fits, else the cheapest
            self.override_shape.value = (
                current if current in self.override_shape.options else self.override_shape.options[0]
            )
        self._build_overrides()

    # the picture ----------------------------------------------------------------------------------

    def owners(self, shape: str) -> list[str | None]:
        """The model id owning each GPU of ``shape`` (None: idle) — what the bars show."""
        assert self.plan is not None
        return self.plan.gpu_allocation[shape].gpu_owners()

    def _legend_index(self) -> dict[str, int]:
        assert self.plan is not None
        return {model_id: i for i, model_id in enumerate(self.plan.deployment_config)}

    def _render(self, plan: Plan) -> str:
        if not plan.gpu_allocation:
            return message(plan.error_message or "No shape fits these models.", "error")
        index = self._legend_index()
        rows = []
        for shape, shape_plan in plan.gpu_allocation.items():
            cells = "".join(
                f'<div class="aqua-gpu" data-owner="{esc(owner or "")}" title="{esc(owner or "idle")}" '
                f'style="flex:1;height:18px;margin:1px;border-radius:3px;'
                f'background:{colour(index[owner]) if owner else IDLE}"></div>'
                for owner in self.owners(shape)
            )
            rows.append(
                f'<div class="aqua-shape" data-shape="{esc(shape)}" style="margin:6px 0">'
                f'<div style="display:flex;justify-content:space-between;flex-wrap:wrap">'
                f"<b>{esc(shape)}</b><span>{shape_plan.used_gpus}/{shape_plan.total_gpus_available} GPUs used"
                f"{' · primary not favoured' if shape_plan.primary_honoured is False else ''}</span></div>"
                f'<div style="display:flex;min-width:120px">{cells}</div>'
                f"{self._model_lines(shape_plan, index)}</div>"
            )
        return "".join(rows)

    def _model_lines(self, shape_plan: ShapePlan, index: dict[str, int]) -> str:
        lines = []
        for m in shape_plan.models:
            memory = f"{m.gpu_memory_in_gbs:g} GB" if m.gpu_memory_in_gbs else ""
            need = f" (needs ≈{m.estimated_need_in_gbs:g} GB)" if m.estimated_need_in_gbs else ""
            flag = " · estimated" if m.estimated else ""
            lines.append(
                f'<div style="font-size:var(--jp-ui-font-size0,11px)"><span style="color:{colour(index[m.ocid])}">'
                f"■</span> {esc(m.model_name or m.ocid)}: {m.gpu_count} GPU · {memory}{need}{flag}</div>"
            )
        small = '<div style="font-size:var(--jp-ui-font-size0,11px)">'
        notes = "".join(f"{small}{esc(n)}</div>" for n in shape_plan.notes)
        alternatives = "".join(
            f"{small}alternative: {esc(', '.join(f'{m.model_name or m.ocid} {m.gpu_count}' for m in a.models))} "
            f"— {esc(a.note)}</div>"
            for a in shape_plan.alternatives
        )
        return "".join(lines) + notes + alternatives

    def _render_reasons(self, plan: Plan) -> str:
        if not plan.incompatible_shapes:
            return ""
        items = "".join(f"<li><b>{esc(s)}</b>: {esc('; '.join(r))}</li>" for s, r in plan.incompatible_shapes.items())
        return (
            f"<details><summary>{len(plan.incompatible_shapes)} shapes cannot hold these models</summary>"
            f"<ul>{items}</ul></details>"
        )

    # overrides ------------------------------------------------------------------------------------

    def _build_overrides(self) -> None:
        shape = self.override_shape.value
        if not shape or self.plan is None or shape not in self.plan.gpu_allocation:
            self.overrides.children = []
            self.alternative.layout.display = "none"
            self.validation.value = ""
            return
        plan = self.plan.gpu_allocation[shape]
        total = plan.total_gpus_available
        counts = self.service.gpu_count_choices(total)
        controls = []
        for m in plan.models:
            control = w.Dropdown(
                options=counts,
                value=m.gpu_count,
                description=(m.model_name or m.ocid)[:24],
                style={"description_width": "initial"},
            )
            control.observe(lambda _: self.validate(), names="value")
            controls.append(control)
        self.overrides.children = controls
        self._override_models = [m.ocid for m in plan.models]  # the model each control sets
        if plan.alternatives:
            alt = plan.alternatives[0]
            self.alternative.description = f"Use the split that fills {alt.used_gpus} GPUs (+{alt.adds_gpus})"
            self.alternative.tooltip = alt.note
            self.alternative.layout.display = None
        else:
            self.alternative.layout.display = "none"
        self.validate()

    def take_alternative(self) -> None:
        """Set the counts to the shape's alternative split (what the button does)."""
        shape_plan = self.plan.gpu_allocation.get(self.override_shape.value) if self.plan else None
        if shape_plan is None or not shape_plan.alternatives:
            return
        alt = shape_plan.alternatives[0]
        for control, planned in zip(self.overrides.children, alt.models, strict=True):
            control.value = planned.gpu_count
        self.validate()

    def spec(self, display_name: str = "aqua_lab deployment", **extra) -> DeploymentSpec:
        """The deployment request the current split (with overrides) describes."""
        models = []
        seen: dict[str, int] = {}
        for model_id, control in zip(self._override_models, self.overrides.children, strict=True):
            n = seen[model_id] = seen.get(model_id, 0) + 1
            entry = {"model_id": model_id, "gpu_count": control.value}
            if n > 1:  # the same model twice needs two served names
                entry["model_name"] = f"{self.service.resolve_model(model_id).name}-{n}"
            models.append(entry)
        return DeploymentSpec(
            models=models,
            instance_shape=self.override_shape.value,
            display_name=display_name,
            primary_model_id=self.picker.primary if self.picker else None,
            **extra,
        )

    def validate(self) -> bool:
        try:
            validated = self.service.validate(self.spec())
        except InvalidInput as exc:
            self.validation.value = "".join(message(str(p), "error") for p in exc.problems)
            return False
        ok = message(f"valid: {validated.used_gpus} GPU(s) on {validated.shape.name}", "ok")
        lines = "".join(
            f"<div><code>{esc(m.model_name)}: {esc(m.served_params)}</code></div>" for m in validated.models
        )
        commands = f'<div class="aqua-commands" style="font-size:var(--jp-ui-font-size0,11px)">{lines}</div>'
        self.validation.value = ok + commands + "".join(message(x, "warning") for x in validated.warnings)
        return True
