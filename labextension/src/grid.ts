/** The plan drawn as a grid: one row per compatible shape, one cell per GPU coloured by its model. */
import { colourMap } from './palette';
import type { Deployment, MemoryFit, Plan, Shape } from './schema';

export interface GpuCell {
  index: number;
  owner: string | null; // model id, null when the GPU is left free
  slot: number | null; // which entry of the selection (a model may be selected twice)
  colour: string | null;
}

export interface RowModel {
  id: string;
  slot: number;
  name: string;
  gpus: number;
  colour: string;
  /** GPU memory the model's GPUs give it, and what it needs (estimated from its size). */
  memory: number | null;
  need: number | null;
  estimated: boolean;
  /** Per-GPU memory from the capacity planner (null when the model's architecture is unknown). */
  fit: MemoryFit | null;
  /** The flags the planner suggests (--max-model-len, --kv-cache-dtype fp8). */
  suggested: string | null;
  /** Where models share GPUs (the local platform): its GPUs, its memory budget on each, "shares GPU 0 with 'b'". */
  gpuIndices: number[] | null;
  budget: number | null;
  sharing: string | null;
}

/** One GPU that models share: a segment per model as wide as its budget, and the room left. */
export interface GpuStack {
  index: number;
  usable: number; // GB the budgets share (GPU memory × utilisation)
  parts: Array<{ slot: number; name: string; colour: string; budget: number }>;
  free: number;
}

/** How the platform names a shape's slots and their memory (the server's words: cores and RAM on a CPU machine). */
export interface Units {
  one: string; // "GPU" or "core"
  many: string;
  memory: string; // "GPU memory" or "RAM"
  cpu: boolean;
}

export function unitsOf(shape: Shape | null | undefined): Units {
  const one = shape?.slot_unit ?? 'GPU';
  return { one, many: `${one}s`, memory: shape?.memory_unit ?? 'GPU memory', cpu: one === 'core' };
}

/** "1 core", "2 GPUs". */
export const counted = (n: number, units: Units): string => `${n} ${n === 1 ? units.one : units.many}`;

/** A slot a running deployment holds: plans see only the free ones, so the grid draws these apart. */
export interface HeldSlot {
  slot: number;
  deploymentId: string;
  displayName: string;
  state: string;
}

/** The states in which a local deployment's runtime runs and holds its slots (capacity.HOLDING). */
export const HOLDING = new Set(['CREATING', 'ACTIVE', 'NEEDS_ATTENTION', 'UPDATING']);

export function heldSlots(deployments: Deployment[], shape: string): HeldSlot[] {
  return deployments
    .filter(d => HOLDING.has(d.state) && d.instance_shape === shape)
    .flatMap(d => (d.slots ?? []).map(slot => ({ slot, deploymentId: d.id, displayName: d.display_name, state: d.state })))
    .sort((a, b) => a.slot - b.slot);
}

/** "'demo' holds cores 0, 1; 'other' holds core 2". */
export function heldText(held: HeldSlot[], units: Units): string {
  const by = new Map<string, HeldSlot[]>();
  held.forEach(h => by.set(h.deploymentId, [...(by.get(h.deploymentId) ?? []), h]));
  return [...by.values()]
    .map(hs => `‘${hs[0].displayName}’ holds ${hs.length === 1 ? units.one : units.many} ${hs.map(h => h.slot).join(', ')}`)
    .join('; ');
}

export interface ShapeRow {
  shape: string;
  units: Units;
  gpuType: string | null;
  gpuMemory: number | null; // per GPU
  totalGpus: number;
  usedGpus: number;
  cells: GpuCell[];
  models: RowModel[];
  notes: string[];
  primaryHonoured: boolean | null;
  /** Set where models share GPUs: one stacked bar per GPU replaces the row of cells. */
  stacks: GpuStack[] | null;
}

export interface PlanGrid {
  rows: ShapeRow[];
  incompatible: Array<{ shape: string; reasons: string[] }>;
  /** colour of each selection entry, by its index in `order` */
  colours: string[];
  error: string | null;
  warnings: string[];
}

/** "id", and "id-2" for a second copy: the served names a deploy form proposes. */
export function copyLabels(order: string[]): string[] {
  return order.map((id, i) => {
    const copy = order.slice(0, i).filter(o => o === id).length;
    return copy ? `${id}-${copy + 1}` : id;
  });
}

/** Each selection entry's colour, keyed by its label (the served name it will get): the colour the
 * deployment's model then has on its card, in the evaluation report and in the widgets. */
export function slotColours(labels: string[]): string[] {
  const map = colourMap(labels);
  return labels.map(label => map.get(label)!);
}

/**
 * `order` is the selection (model ids, a model may appear twice); each entry keeps its colour on
 * every shape and across plans.  A shape's models are matched to entries in order of appearance.
 */
export function planGrid(plan: Plan, shapes: Shape[], order: string[], labels: string[] = copyLabels(order)): PlanGrid {
  const colours = slotColours(labels);
  const byName = new Map(shapes.map(s => [s.name, s]));
  const rows: ShapeRow[] = Object.entries(plan.gpu_allocation).map(([name, shapePlan]) => {
    const shape = byName.get(name);
    const total = shapePlan.total_gpus_available;
    const perGpu =
      shape?.gpu_specs?.gpu_memory_in_gbs != null && shape.gpu_specs.gpu_count
        ? shape.gpu_specs.gpu_memory_in_gbs / shape.gpu_specs.gpu_count
        : null;
    const cells: GpuCell[] = [];
    const used = new Set<number>();
    const models = shapePlan.models.map((m, at) => {
      let slot = order.findIndex((id, i) => id === m.ocid && !used.has(i));
      if (slot < 0) {
        slot = order.length + at; // the server resolved a name to another id: still a colour of its own
      }
      used.add(slot);
      const colour = colours[slot] ?? colourMap([...labels, m.model_name ?? m.ocid]).get(m.model_name ?? m.ocid)!;
      for (let i = 0; i < m.gpu_count; i++) {
        cells.push({ index: cells.length, owner: m.ocid, slot, colour });
      }
      return {
        id: m.ocid,
        slot,
        name: m.model_name ?? m.ocid,
        gpus: m.gpu_count,
        colour,
        memory: m.gpu_memory_in_gbs ?? null,
        need: m.estimated_need_in_gbs ?? null,
        estimated: !!m.estimated,
        fit: m.memory ?? null,
        suggested: m.suggested_parameters ?? null,
        gpuIndices: m.gpu_indices ?? null,
        budget: m.memory_budget_in_gbs ?? null,
        sharing: m.sharing ?? null
      };
    });
    while (cells.length < total) {
      cells.push({ index: cells.length, owner: null, slot: null, colour: null });
    }
    const stacks = models.some(m => m.gpuIndices) ? gpuStacks(models, total, shapePlan.gpu_usable_in_gbs ?? 0) : null;
    return {
      shape: name,
      // a CPU flex shape's plan counts OCPUs (the server says so in slot_unit), whatever the shape lists
      units: shapePlan.slot_unit === 'OCPU' ? { one: 'OCPU', many: 'OCPUs', memory: 'memory', cpu: true } : unitsOf(shape),
      gpuType: shape?.gpu_specs?.gpu_type ?? null,
      gpuMemory: perGpu,
      totalGpus: total,
      usedGpus: shapePlan.used_gpus,
      cells,
      models,
      notes: shapePlan.notes ?? [],
      primaryHonoured: shapePlan.primary_honoured ?? null,
      stacks
    };
  });
  const incompatible = Object.entries(plan.incompatible_shapes ?? {}).map(([shape, reasons]) => ({ shape, reasons }));
  return { rows, incompatible, colours, error: plan.error_message ?? null, warnings: plan.warnings ?? [] };
}

/** Each GPU of a shape whose models share GPUs, with the budgets on it in model order. */
export function gpuStacks(models: RowModel[], total: number, usable: number): GpuStack[] {
  const stacks: GpuStack[] = Array.from({ length: total }, (_, index) => ({ index, usable, parts: [], free: usable }));
  for (const m of models) {
    for (const g of m.gpuIndices ?? []) {
      const budget = m.budget ?? 0;
      stacks[g]?.parts.push({ slot: m.slot, name: m.name, colour: m.colour, budget });
      if (stacks[g]) {
        stacks[g].free -= budget;
      }
    }
  }
  return stacks;
}

/** Catalog filter of the Plan tab: text in name/id, task, size range, "runs on shape". */
export interface ModelFilter {
  text: string;
  task: string; // '' = any
  maxBillions: number | null;
}

export function filterModels<M extends { id: string; name: string; task?: string; parameter_count_b?: number | null }>(
  models: M[],
  filter: ModelFilter,
  allowed: Set<string> | null
): M[] {
  const text = filter.text.trim().toLowerCase();
  return models.filter(
    m =>
      (!text || m.name.toLowerCase().includes(text) || m.id.toLowerCase().includes(text)) &&
      (!filter.task || m.task === filter.task) &&
      (filter.maxBillions === null || (m.parameter_count_b ?? Infinity) <= filter.maxBillions) &&
      (allowed === null || allowed.has(m.id))
  );
}

/** One line per model: what each of its GPUs holds and the context that fits. */
export function memoryLine(fit: MemoryFit, suggested: string | null, units: Units = unitsOf(null)): string {
  const state = fit.fits ? 'fits' : `does not fit: ${(fit.reasons ?? []).join('; ')}`;
  // on a CPU machine a model server's threads share one RAM: its figure is per model, not per core
  const share = units.cpu
    ? `needs ${fit.per_gpu_gb.toFixed(1)} of ${fit.gpu_memory_gb.toFixed(1)} GB RAM`
    : `per GPU ${fit.per_gpu_gb.toFixed(1)} of ${fit.gpu_memory_gb.toFixed(1)} GB`;
  const line =
    `${share} · KV ${fit.kv_capacity_tokens.toLocaleString('en')} tokens · ` +
    `max context ${fit.max_model_len_fit.toLocaleString('en')} at concurrency ${fit.concurrency} · ${state}`;
  return suggested ? `${line} · suggested: ${suggested}` : line;
}
