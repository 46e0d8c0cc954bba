"""Pick models and see how a shape's GPUs split between them."""

from __future__ import annotations

import ipywidgets as w
from pydantic import ValidationError
from traitlets import List, Unicode

from ..domain import (
    CapacityInputs,
    CatalogModel,
    DeploymentSpec,
    MemoryFit,
    Plan,
    PlannedModel,
    Shape,
    ShapePlan,
    machine_words,
)
from ..errors import AquaLabError, InvalidInput
from ..service import AquaLabService
from .common import IDLE, esc, fits, full_width, label_width, message, palette, wrap


class ModelPicker(w.VBox):
    """Searchable, filterable multi-select of a platform's models, with a primary-model choice."""

    selected = List(Unicode(), help="ids of the picked models, in pick order")
    primary = Unicode(allow_none=True, default_value=None)

    def __init__(self, service: AquaLabService, **kwargs):
        self.service = service
        self.models: list[CatalogModel] = service.models()
        self.search = w.Text(placeholder="search models…", layout=fits())
        sources = sorted({m.source for m in self.models})
        tasks = sorted({m.task for m in self.models})
        self.source = w.Dropdown(options=["any source", *sources], description="Source")
        self.task = w.Dropdown(options=["any task", *tasks], description="Task")
        shapes = [s.name for s in service.shapes() if s.gpu_count]
        self.shape = w.Dropdown(options=["any shape", *shapes], description="Runs on")
        self.max_size = w.FloatText(value=0, description="≤ B params", tooltip="0: no limit")
        self.choices = w.SelectMultiple(rows=8, layout=fits())
        # "" and not None: a Dropdown whose value is None draws a blank box instead of "no primary"
        self.primary_choice = w.Dropdown(options=[("no primary", "")], value="", description="Primary")
        # one row per picked model: how many copies it serves (the same model twice is two served names)
        self.copies = w.VBox()
        self._copies: dict[str, w.BoundedIntText] = {}
        self.status = w.HTML()
        for control in (self.search, self.source, self.task, self.shape, self.max_size):
            control.observe(lambda _: self._filter(), names="value")
        self.choices.observe(self._on_choice, names="value")
        self.primary_choice.observe(lambda c: setattr(self, "primary", c["new"] or None), names="value")
        self.register = RegisterBox(service, on_registered=self.reload)
        children = [
            self.search,
            w.HBox([self.source, self.task], layout=wrap()),
            w.HBox([self.shape, self.max_size], layout=wrap()),
            self.choices,
            self.copies,
            self.primary_choice,
            self.status,
        ]
        if service.can_register_models:
            children.append(self.register)
        super().__init__(children, **kwargs)
        self._filter()

    def reload(self, added: CatalogModel | None = None) -> None:
        """Read the platform's models again (after a registration), keeping the picks that remain."""
        self.models = self.service.models()
        known = {m.id for m in self.models}
        self.selected = [i for i in self.selected if i in known]
        self._filter()
        self._on_choice({"new": tuple(dict.fromkeys(self.selected))})

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
        picked = list(dict.fromkeys(change["new"]))
        counts = {i: self.selected.count(i) or 1 for i in picked}
        self._set_picks(picked, counts)

    def _set_picks(self, picked: list[str], counts: dict[str, int]) -> None:
        names = {m.id: m.name for m in self.models}
        rows = []
        for i in picked:
            control = self._copies.get(i) or w.BoundedIntText(
                min=1, max=8, description="copies", layout=w.Layout(width="150px"), style={"description_width": "50px"}
            )
            control.unobserve_all("value")
            control.value = counts.get(i, 1)
            control.observe(lambda _: self._copies_changed(), names="value")
            self._copies[i] = control
            label = w.HTML(layout=w.Layout(flex="1 1 auto", overflow="hidden"))
            rows.append(w.HBox([control, label], layout=w.Layout(width="100%")))
        self.copies.children = rows
        self._copies = {i: self._copies[i] for i in picked}
        self.selected = [i for i in picked for _ in range(self._copies[i].value)]
        self._label_copies(names)
        current = self.primary if self.primary in picked else None
        self.primary_choice.options = [("no primary", ""), *((names[i], i) for i in picked)]
        self.primary_choice.value = current or ""

    def _copies_changed(self) -> None:
        picked = list(self._copies)
        self.selected = [i for i in picked for _ in range(self._copies[i].value)]
        self._label_copies({m.id: m.name for m in self.models})

    def _label_copies(self, names: dict[str, str]) -> None:
        for row, (model_id, control) in zip(self.copies.children, self._copies.items(), strict=True):
            served = served_names(names.get(model_id, model_id), control.value)
            row.children[1].value = (
                f'<span style="white-space:nowrap">{esc(names.get(model_id, model_id))} · served as '
                f"{esc(', '.join(served))}</span>"
            )

    def add_copy(self, model_id: str) -> None:
        """One more copy of a picked model (what its copies box does when raised by one)."""
        self._copies[self.service.resolve_model(model_id).id].value += 1

    def pick(self, *model_ids: str, primary: str | None = None) -> None:
        """Select models programmatically (by id or name), as a user's clicks would; an id given
        twice is two copies."""
        ids = [self.service.resolve_model(i).id for i in model_ids]
        self.search.value = ""
        picked = list(dict.fromkeys(ids))
        self.selected = ids
        self._filter()
        self._set_picks(picked, {i: ids.count(i) for i in picked})
        if primary is not None:
            self.primary_choice.value = self.service.resolve_model(primary).id


def group_reasons(incompatible: dict[str, list[str]]) -> dict[str, list[str]]:
    """Reason → the shapes it applies to: 18 shapes that fail for one reason are one line, not 18."""
    grouped: dict[str, list[str]] = {}
    for shape, reasons in incompatible.items():
        for reason in reasons:
            grouped.setdefault(reason, []).append(shape)
    return grouped


def served_names(name: str, copies: int) -> list[str]:
    """The names the copies of one model are served as (the deploy request names them so)."""
    return [name if n == 1 else f"{name}-{n}" for n in range(1, copies + 1)]


def planned_names(models: list[PlannedModel]) -> list[str]:
    """The name each entry of a split is served as: the n-th copy of a model is its n-th served name,
    so two copies are two legend lines and two colours, never one name twice."""
    seen: dict[str, int] = {}
    names = []
    for m in models:
        seen[m.ocid] = seen.get(m.ocid, 0) + 1
        names.append(served_names(m.model_name or m.ocid, seen[m.ocid])[-1])
    return names


class RegisterBox(w.Accordion):
    """Register a model file or folder of this machine: a GGUF file, a Hugging Face folder, or a GGUF
    LoRA adapter of a local model; and forget one registered before."""

    def __init__(self, service: AquaLabService, on_registered=None, **kwargs):
        self.service, self.on_registered = service, on_registered
        self.path = w.Text(
            description="Path", placeholder="/path/to/model.gguf or a Hugging Face folder", layout=full_width()
        )
        self.model_name = w.Text(description="Name", placeholder="default: from the file")
        self.base = w.Dropdown(description="LoRA of", options=[("not an adapter", None)])
        self.button = w.Button(description="Register", icon="plus")
        self.forget = w.Dropdown(description="Registered", options=[])
        self.forget_button = w.Button(description="Unregister", icon="trash")
        self.result = w.HTML()
        self.forget_row = w.HBox([self.forget, self.forget_button], layout=w.Layout(flex_flow="row wrap"))
        self.button.on_click(lambda _: self.submit())
        self.forget_button.on_click(lambda _: self.remove())
        body = w.VBox(
            [self.path, w.HBox([self.model_name, self.base], layout=w.Layout(flex_flow="row wrap")), self.button]
            + [self.forget_row, self.result]
        )
        super().__init__([body], **kwargs)
        self.set_title(0, "Add a model of this machine (GGUF file, Hugging Face folder, LoRA adapter)")
        self.selected_index = None
        self._options()

    def _options(self) -> None:
        models = self.service.models()
        bases = [(m.name, m.id) for m in models if m.tags.get("kind") != "lora"]
        self.base.options = [("not an adapter", None), *bases]
        self.forget.options = [(m.name, m.id) for m in models if m.tags.get("registered") != "no"]
        self.forget_row.layout.display = None if self.forget.options else "none"  # nothing to forget: no empty box

    def submit(self) -> CatalogModel | None:
        if not self.path.value.strip():
            self.result.value = message("Path: give the file or folder to register.", "warning")
            return None
        try:
            model = self.service.register_model(
                self.path.value.strip(), self.model_name.value.strip() or None, self.base.value
            )
        except AquaLabError as exc:
            self.result.value = message(str(exc), "error")
            return None
        self.result.value = message(f"registered {model.id}: pick it above.", "ok")
        self.path.value = self.model_name.value = ""
        self._options()
        if self.on_registered:
            self.on_registered(model)
        return model

    def remove(self) -> None:
        if not self.forget.value:
            self.result.value = message("Nothing registered to remove.", "warning")
            return
        try:
            model = self.service.unregister_model(self.forget.value)
        except AquaLabError as exc:
            self.result.value = message(str(exc), "error")
            return
        self.result.value = message(f"unregistered {model.id} (its files are untouched).", "ok")
        self._options()
        if self.on_registered:
            self.on_registered(None)


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
        self._asked: tuple[list[str] | None, str | None] = (None, None)
        self._build_what_if()
        super().__init__(
            [self.what_if, self.table, self.reasons, self.override_shape, self.overrides, self.alternative]
            + [self.validation],
            **kwargs,
        )
        if picker is not None:
            picker.observe(lambda _: self.refresh(), names=["selected", "primary"])

    # what-if inputs (the memory model) ------------------------------------------------------------

    def _build_what_if(self) -> None:
        narrow = {"description_width": "initial"}
        self.max_model_len = w.IntText(value=0, description="Context (0: config's)", style=narrow)
        self.concurrency = w.BoundedIntText(value=1, min=1, max=4096, description="Concurrency", style=narrow)
        self.kv_cache_dtype = w.Dropdown(options=["auto", "fp8"], value="auto", description="KV cache", style=narrow)
        self.weight_precision = w.Dropdown(
            options=CapacityInputs.precisions(), value="auto", description="Weights", style=narrow
        )
        machine = next((s for s in self.service.shapes() if s.name == self.service.default_shape()), None)
        self.gpu_memory_utilization = w.FloatSlider(  # on a CPU machine the engine's memory is RAM
            value=0.9,
            min=0.5,
            max=0.99,
            step=0.01,
            description=f"{machine_words('GPU memory', machine)} use",
            style=narrow,
        )
        controls = [self.max_model_len, self.concurrency, self.kv_cache_dtype, self.weight_precision]
        controls.append(self.gpu_memory_utilization)
        # OCI's CPU flex shapes are planned only once sized (as the CLI's --ocpus/--memory_in_gbs)
        self.ocpus = w.BoundedIntText(value=0, min=0, max=1024, description="Flex OCPUs (0: none)", style=narrow)
        self.memory_in_gbs = w.BoundedFloatText(value=0, min=0, max=65536, description="Flex memory GB", style=narrow)
        if self.service.platform_name == "oci":
            controls += [self.ocpus, self.memory_in_gbs]
        for control in controls:
            control.observe(lambda _: self.refresh(*self._asked), names="value")
        self.what_if = w.HBox(controls, layout=w.Layout(flex_flow="row wrap"))

    def capacity(self) -> CapacityInputs:
        """The what-if inputs as the controls set them (raises InvalidInput naming the control)."""
        given = {
            "max_model_len": self.max_model_len.value or None,
            "concurrency": self.concurrency.value,
            "kv_cache_dtype": self.kv_cache_dtype.value,
            "weight_precision": self.weight_precision.value,
            "gpu_memory_utilization": self.gpu_memory_utilization.value,
            "ocpus": self.ocpus.value or None,
            "memory_in_gbs": self.memory_in_gbs.value or None,
        }
        try:
            return CapacityInputs.model_validate(given)
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from None

    def refresh(self, model_ids: list[str] | None = None, primary: str | None = None) -> None:
        self._asked = (model_ids, primary)
        ids = model_ids if model_ids is not None else (self.picker.selected if self.picker else [])
        primary = primary if primary is not None else (self.picker.primary if self.picker else None)
        if not ids:
            self.plan = None
            self.table.value = message("Pick one or more models to see how the GPUs split.")
            self.reasons.value = ""
            self.override_shape.options = []
            self.override_shape.layout.display = "none"  # nothing to adjust: no empty box
            return
        try:
            self.plan = self.service.plan(ids, primary, capacity=self.capacity())
        except AquaLabError as exc:
            self.plan = None
            self.table.value = message(str(exc), "error")
            return
        self.table.value = self._render(self.plan)
        self.reasons.value = self._render_reasons(self.plan)
        current = self.override_shape.value
        self.override_shape.options = list(self.plan.gpu_allocation)
        self.override_shape.layout.display = None if self.override_shape.options else "none"
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

    def _palette(self) -> dict[str, str]:
        """One colour per served name, the same on every shape."""
        assert self.plan is not None
        return palette(n for shape_plan in self.plan.gpu_allocation.values() for n in planned_names(shape_plan.models))

    def held(self, shape: str) -> list[tuple[int, str]]:
        """(core or GPU, deployment) for each slot of ``shape`` a running deployment owns (this machine)."""
        if shape != self.service.default_shape():
            return []
        try:
            deployments = self.service.list_deployments()
        except AquaLabError:
            return []
        running = ("CREATING", "ACTIVE", "NEEDS_ATTENTION", "UPDATING")
        return sorted(
            (slot, d.display_name)
            for d in deployments
            if d.state in running and d.instance_shape == shape
            for slot in d.slots
        )

    def _shape(self, name: str) -> Shape | None:
        return next((s for s in self.service.shapes() if s.name == name), None)

    def unit(self, shape: str, count: int = 2) -> str:
        found = self._shape(shape)
        return found.unit(count) if found else ("GPU" if count == 1 else "GPUs")

    def _held_text(self, shape: str, held: list[tuple[int, str]]) -> str:
        if not held:
            return ""
        owners: dict[str, list[int]] = {}
        for slot, name in held:
            owners.setdefault(name, []).append(slot)
        parts = ", ".join(f"{self.unit(shape, len(s))} {', '.join(map(str, s))} held by {n}" for n, s in owners.items())
        return f" · {parts}"

    @staticmethod
    def _held_cells(held: list[tuple[int, str]]) -> str:
        return "".join(
            f'<div class="aqua-gpu aqua-held" data-slot="{slot}" data-held-by="{esc(name)}" '
            f'title="{esc(f"{slot}: held by {name}")}" style="flex:1;height:18px;margin:1px;border-radius:3px;'
            f"background:repeating-linear-gradient(45deg,{IDLE} 0 4px,transparent 4px 8px);"
            f"font-size:9px;overflow:hidden;white-space:nowrap;text-align:center;"
            f'color:var(--jp-ui-font-color1,#000)">{esc(name)}</div>'
            for slot, name in held
        )

    def _render(self, plan: Plan) -> str:
        if not plan.gpu_allocation:
            error = message(plan.error_message or "No shape fits these models.", "error")
            machine = self.service.default_shape()
            held = self.held(machine) if machine else []
            if not held:
                return error
            full = (
                f"Every {self.unit(machine, 1)} of {machine} is held by a running deployment: delete or deactivate one"
            )
            error = message(full + " in Deployments to free its " + self.unit(machine) + ".", "error")
            return error + (  # this machine is full: show who holds it
                f'<div class="aqua-shape" data-shape="{esc(machine)}" style="margin:6px 0">'
                f"<b>{esc(machine)}</b><span>{self._held_text(machine, held)}</span>"
                f'<div style="display:flex;min-width:120px">{self._held_cells(held)}</div></div>'
            )
        tints = self._palette()
        rows = []
        for shape, shape_plan in plan.gpu_allocation.items():
            held = self.held(shape)
            cells = self._held_cells(held)
            names = planned_names(shape_plan.models)
            if shape_plan.shares_gpus:  # models share GPUs: one stacked bar per GPU, budgets and free room
                bar = f'<div style="display:flex;min-width:120px">{cells}</div>' if held else ""
                bar += gpu_stacks(shape_plan, names, tints)
            else:
                owners = self.owners(shape)
                served = [n for m, n in zip(shape_plan.models, names, strict=True) for _ in range(m.gpu_count)]
                served += [None] * (len(owners) - len(served))
                cells += "".join(
                    f'<div class="aqua-gpu" data-owner="{esc(owner or "")}" data-served="{esc(name or "")}" '
                    f'title="{esc(name or "idle")}" style="flex:1;height:18px;margin:1px;border-radius:3px;'
                    f'background:{tints[name] if name else IDLE}"></div>'
                    for owner, name in zip(owners, served, strict=True)
                )
                bar = f'<div style="display:flex;min-width:120px">{cells}</div>'
            rows.append(
                f'<div class="aqua-shape" data-shape="{esc(shape)}" style="margin:6px 0">'
                f'<div style="display:flex;justify-content:space-between;flex-wrap:wrap">'
                f"<b>{esc(shape)}</b><span>{shape_plan.used_gpus}/{shape_plan.total_gpus_available} "
                f"{self.unit(shape)} used{self._held_text(shape, held)}"
                f"{' · primary not favoured' if shape_plan.primary_honoured is False else ''}</span></div>"
                f"{bar}"
                f"{self._model_lines(shape_plan, tints, self._shape(shape))}</div>"
            )
        return "".join(rows)

    def _model_lines(self, shape_plan: ShapePlan, tints: dict[str, str], shape: Shape | None = None) -> str:
        lines = []
        unit = shape.unit if shape else (lambda n=2: "GPU" if n == 1 else "GPUs")
        names = planned_names(shape_plan.models)
        for m, name in zip(shape_plan.models, names, strict=True):
            memory = f"{m.gpu_memory_in_gbs:g} GB" if m.gpu_memory_in_gbs else ""
            if memory and shape is not None and shape.is_cpu:
                memory += " RAM"
            need = f" (needs ≈{m.estimated_need_in_gbs:g} GB)" if m.estimated_need_in_gbs else ""
            if m.gpu_indices is not None:  # on a GPU it may share: its budget there, not the GPU's memory
                where = ", ".join(map(str, m.gpu_indices))
                memory, need = f"budget {m.memory_budget_in_gbs or 0:.1f} GB on GPU {where}", ""
            flag = " · estimated" if m.estimated else ""
            flag += f" · {m.sharing}" if m.sharing else ""
            lines.append(
                f'<div class="aqua-legend" data-served="{esc(name)}" style="font-size:var(--jp-ui-font-size0,11px)">'
                f'<span style="color:{tints[name]}">■</span> {esc(name)}: {m.gpu_count} {unit(m.gpu_count)} · '
                f"{memory}{need}{flag}</div>"
            )
            if m.memory is not None:
                lines.append(memory_bar(m.memory, m.suggested_parameters, tints[name], shape))
        small = '<div style="font-size:var(--jp-ui-font-size0,11px)">'
        shown = {f"{name!r} {m.sharing}" for m, name in zip(shape_plan.models, names, strict=True) if m.sharing}
        notes = "".join(f"{small}{esc(n)}</div>" for n in shape_plan.notes if n not in shown)  # legend says it
        alternatives = "".join(
            f"{small}alternative: {esc(', '.join(f'{m.model_name or m.ocid} {m.gpu_count}' for m in a.models))} "
            f"— {esc(a.note)}</div>"
            for a in shape_plan.alternatives
        )
        return "".join(lines) + notes + alternatives

    def _render_reasons(self, plan: Plan) -> str:
        if not plan.incompatible_shapes:
            return ""
        items = "".join(
            f'<li class="aqua-reason"><span>{esc(reason)}</span> — <b>{esc(", ".join(shapes))}</b></li>'
            for reason, shapes in group_reasons(plan.incompatible_shapes).items()
        )
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
        labels = planned_names(plan.models)
        width = label_width(labels)  # one column: the boxes line up
        for m, label in zip(plan.models, labels, strict=True):
            control = w.Dropdown(
                options=counts,
                value=m.gpu_count,
                description=label,
                tooltip=label,
                style={"description_width": width},
                layout=w.Layout(width=f"calc({width} + 90px)", max_width="100%"),
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
        planned = self._planned_models()
        for i, (model_id, control) in enumerate(zip(self._override_models, self.overrides.children, strict=True)):
            n = seen[model_id] = seen.get(model_id, 0) + 1
            entry = {"model_id": model_id, "gpu_count": control.value}
            if n > 1:  # the same model twice needs two served names
                entry["model_name"] = f"{self.service.resolve_model(model_id).name}-{n}"
            suggested = planned[i].suggested_parameters if i < len(planned) else None
            if suggested and self._asks_context() and control.value == planned[i].gpu_count:
                entry["params"] = suggested  # the engine starts with the context the plan checked
            models.append(entry)
        return DeploymentSpec(
            models=models,
            instance_shape=self.override_shape.value,
            display_name=display_name,
            primary_model_id=self.picker.primary if self.picker else None,
            **extra,
        )

    def _planned_models(self) -> list:
        shape = self.override_shape.value
        if self.plan is None or shape not in self.plan.gpu_allocation:
            return []
        return self.plan.gpu_allocation[shape].models

    def _asks_context(self) -> bool:
        """The user set a context, a concurrency or an fp8 cache: deploy with what the plan checked
        (its flags merge over the config's defaults) instead of the config's own."""
        return bool(self.max_model_len.value) or self.concurrency.value > 1 or self.kv_cache_dtype.value == "fp8"

    def validate(self) -> bool:
        try:
            validated = self.service.validate(self.spec())
        except InvalidInput as exc:
            self.validation.value = "".join(message(str(p), "error") for p in exc.problems)
            return False
        ok = message(
            f"valid: {validated.used_gpus} {validated.shape.unit(validated.used_gpus)} of {validated.shape.name}", "ok"
        )
        lines = "".join(
            f"<div><code>{esc(m.model_name)}: {esc(m.served_params)}</code></div>" for m in validated.models
        )
        commands = f'<div class="aqua-commands" style="font-size:var(--jp-ui-font-size0,11px)">{lines}</div>'
        self.validation.value = ok + commands + "".join(message(x, "warning") for x in validated.warnings)
        return True


def gpu_stacks(shape_plan: ShapePlan, names: list[str], tints: dict[str, str]) -> str:
    """Where models share GPUs: a row per GPU, a segment per model as wide as its memory budget (never
    narrower than a sliver, so a small model stays visible) and the room left, in GB."""
    usable = shape_plan.gpu_usable_in_gbs or 1.0
    on: list[list[tuple[str, float]]] = [[] for _ in range(shape_plan.total_gpus_available)]
    for m, name in zip(shape_plan.models, names, strict=True):
        for g in m.gpu_indices or []:
            on[g].append((name, m.memory_budget_in_gbs or 0.0))
    rows = []
    for g, stack in enumerate(on):
        free = usable - sum(budget for _, budget in stack)
        segments = "".join(
            f'<div class="aqua-gpu-part" data-served="{esc(name)}" title="{esc(f"{name}: {budget:g} GB budget")}" '
            f'style="flex:0 0 {100 * budget / usable:.2f}%;min-width:10px;background:{tints[name]};'
            f'border-right:1px solid var(--jp-layout-color0,#fff)"></div>'
            for name, budget in stack
        )
        rows.append(
            f'<div class="aqua-gpu-stack" data-gpu="{g}" style="display:flex;align-items:center;gap:6px;'
            f'margin:2px 0;font-size:var(--jp-ui-font-size0,11px)">'
            f'<span style="flex:0 0 auto;width:3.5em">GPU {g}</span>'
            f'<div style="display:flex;flex:1;min-width:120px;height:14px;border-radius:3px;overflow:hidden;'
            f"border:1px solid {IDLE};"
            f'background:repeating-linear-gradient(45deg,{IDLE} 0 2px,transparent 2px 6px)" '
            f'title="{esc(f"{free:.1f} of {usable:g} GB free")}">{segments}</div>'
            f'<span class="aqua-gpu-free" style="flex:0 0 7em;text-align:right">{free:.1f} GB free</span></div>'
        )
    return "".join(rows)


def memory_bar(fit: MemoryFit, suggested: str | None, tint: str, shape: Shape | None = None) -> str:
    """One GPU of the model's share: weights, KV cache and overhead against what the engine may use."""
    scale = max(fit.gpu_memory_gb, fit.per_gpu_gb) or 1
    parts = [("weights", fit.weights_gb, tint, 1.0), ("KV cache", fit.kv_cache_gb, tint, 0.5)]
    parts.append(("overhead", fit.overhead_gb, IDLE, 1.0))
    segments = "".join(
        f'<div class="aqua-mem" data-part="{name}" title="{name} {gb:g} GB" '
        f'style="width:{min(100.0, 100 * gb / scale):.1f}%;background:{c};opacity:{o}"></div>'
        for name, gb, c, o in parts
    )
    state = "fits" if fit.fits else "does not fit: " + "; ".join(fit.reasons)
    text = (
        f"per GPU {fit.per_gpu_gb:g} of {fit.gpu_memory_gb:g} GB · KV {fit.kv_capacity_tokens:,} tokens · "
        f"max context {fit.max_model_len_fit:,} at concurrency {fit.concurrency} · {state}"
    )
    if suggested:
        text += f" · suggested: {suggested}"
    text = machine_words(text, shape)
    kind = "aqua-fits" if fit.fits else "aqua-overflows"
    return (
        f'<div class="aqua-memory {kind}" style="font-size:var(--jp-ui-font-size0,11px);margin-left:14px">'
        f'<div style="display:flex;height:8px;width:100%;border:1px solid {IDLE};border-radius:2px">{segments}</div>'
        f"{esc(text)}</div>"
    )
