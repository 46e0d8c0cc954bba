/** The Plan & deploy tab: pick models, see how they share each shape's GPUs, adjust, deploy. */
import { Widget } from '@lumino/widgets';

import { AquaContext, COMMANDS } from './context';
import { carryUserState, clear, errorBox, h } from './dom';
import {
  counted,
  filterModels,
  HeldSlot,
  heldSlots,
  heldText,
  memoryLine,
  planGrid,
  PlanGrid,
  ShapeRow,
  slotColours,
  unitsOf
} from './grid';
import { ApiError, describe, postJSON, Problem, requestAPI } from './request';
import type {
  CatalogModel,
  DataList_CatalogModel_,
  DataList_Deployment_,
  DataList_Shape_,
  Deployment,
  DeploymentConfig,
  DeploymentSpec,
  Logs,
  Plan,
  PlanRequest,
  Shape,
  ValidationResult
} from './schema';

/** `ads aqua deployment create` options beyond models, shape and name (OCI takes them all). */
const ADVANCED: Array<[keyof DeploymentSpec, string, 'text' | 'number' | 'env' | 'list']> = [
  ['description', 'Description', 'text'],
  ['instance_count', 'Instance count', 'number'],
  ['web_concurrency', 'Web concurrency', 'number'],
  ['container_image_uri', 'Container image URI', 'text'],
  ['image_digest', 'Image digest (sha256:…)', 'text'],
  ['entrypoint', 'Entrypoint (one argument per line)', 'list'],
  ['cmd_var', 'Cmd (one argument per line)', 'list'],
  ['server_port', 'Server port', 'number'],
  ['health_check_port', 'Health check port', 'number'],
  ['env_var', 'Environment (KEY=VALUE per line)', 'env'],
  ['bandwidth_mbps', 'Bandwidth (Mbps)', 'number'],
  ['ocpus', 'OCPUs', 'number'],
  ['memory_in_gbs', 'Memory (GB)', 'number'],
  ['log_group_id', 'Log group OCID', 'text'],
  ['access_log_id', 'Access log OCID', 'text'],
  ['predict_log_id', 'Predict log OCID', 'text'],
  ['private_endpoint_id', 'Private endpoint OCID', 'text'],
  ['subnet_id', 'Subnet OCID', 'text'],
  ['compartment_id', 'Compartment OCID', 'text'],
  ['project_id', 'Project OCID', 'text']
];

/** What the local platform reads of a request (the rest is OCI's: a form shows a platform's own options). */
const LOCAL_OPTIONS = new Set<keyof DeploymentSpec>(['description', 'instance_count', 'env_var']);

/** The server's defaults where a field left empty has one (a flex shape is planned at 8 OCPUs, 128 GB). */
const PLACEHOLDERS: Partial<Record<keyof DeploymentSpec, string>> = {
  ocpus: '8',
  memory_in_gbs: '128',
  server_port: '8080',
  health_check_port: '8080'
};

/** A bring-your-own-container group's fields: shown together when the type is HETEROGENEOUS. */
const CONTAINER = new Set<keyof DeploymentSpec>(['container_image_uri', 'image_digest', 'entrypoint', 'cmd_var', 'server_port', 'health_check_port', 'env_var']);
/** Only a BYOC container takes these; other types run AQUA's vLLM container, which sets them itself. */
const BYOC_ONLY = new Set<keyof DeploymentSpec>(['image_digest', 'entrypoint', 'cmd_var']);
/** What sizes an OCI CPU flex shape (it has no GPUs: OCPUs and memory are chosen per deployment). */
const FLEX = new Set<keyof DeploymentSpec>(['ocpus', 'memory_in_gbs']);
/** The model-group types a form offers on OCI (STACKED needs adapters, which this form does not pick). */
const DEPLOYMENT_TYPES: Array<[string, string]> = [
  ['MULTI', 'MULTI: one vLLM server per model'],
  ['SINGLE', 'SINGLE: one model'],
  ['HETEROGENEOUS', 'HETEROGENEOUS: your own container (BYOC)']
];

/** An OCI CPU flex shape (VM.Standard.E4.Flex …): no GPUs, so OCPUs and memory are asked for. */
export function isFlexCpu(name: string, shape: Shape | undefined, cpuUnits: boolean): boolean {
  const gpus = shape?.gpu_specs && shape.gpu_specs.gpu_type !== 'CPU' ? shape.gpu_specs.gpu_count ?? 0 : 0;
  return name.includes('.Flex') && (cpuUnits || gpus === 0);
}

function optionsOf(platform: string): typeof ADVANCED {
  if (platform === 'oci') {
    return ADVANCED;
  }
  return platform === 'local' ? ADVANCED.filter(([key]) => LOCAL_OPTIONS.has(key)) : [];
}

/** Lets a long model id wrap after its "/" rather than mid-word ("codellama/" + "CodeLlama-13b"). */
export function breakable(name: string): Array<string | HTMLElement> {
  return name.split(/(?<=\/)/).flatMap((part, i) => (i ? [h('wbr'), part] : [part]));
}

const DONE = new Set(['ACTIVE', 'FAILED', 'INACTIVE', 'DELETED', 'NEEDS_ATTENTION']);

export class PlanView extends Widget {
  private models: CatalogModel[] = [];
  private shapes: Shape[] = [];
  private selected: string[] = [];
  private primary: string | null = null;
  private grid: PlanGrid | null = null;
  private chosen: ShapeRow | null = null;
  private planSeq = 0;
  private validateSeq = 0;
  private planTimer: number | null = null;
  private displayName: string | null = null; // what the user typed; kept when the plan is redrawn
  private deploymentType = 'MULTI'; // OCI: the type the user chose; kept when the plan is redrawn
  private typed = new Map<string, string>(); // the options the user filled (not flex sizes); kept when the plan is redrawn
  private runsOn: Map<string, Set<string> | null> = new Map(); // model id → shapes of its config (null: none)
  private deployments: Deployment[] = []; // the platform's, read with each plan: who holds which slots
  private paused: Deployment[] = []; // holders this tab deactivated, offered back

  private readonly search = h('input', { type: 'search', placeholder: 'Search models', 'aria-label': 'Search models' });
  private readonly task = h('select', { 'aria-label': 'Task' }, h('option', { value: '' }, 'any task'));
  private readonly size = h('input', { type: 'number', min: 0, step: 'any', placeholder: 'any', 'aria-label': 'Largest size in billions of parameters' });
  private readonly shapeFilter = h('select', { 'aria-label': 'Runs on shape' }, h('option', { value: '' }, 'any shape'));
  private readonly catalog = h('div', { className: 'aqua-catalog', role: 'group', 'aria-label': 'Models' });
  private readonly chips = h('div', { className: 'aqua-chips', 'aria-live': 'polite' });
  // what-if inputs of the capacity planner: the plan is asked again as they change
  private readonly maxModelLen = h('input', { type: 'number', min: 16, step: 256, placeholder: "config's", 'aria-label': 'Context (max_model_len)' });
  private readonly concurrency = h('input', { type: 'number', min: 1, step: 1, placeholder: '1', 'aria-label': 'Concurrency' });
  private readonly kvCacheDtype = h('select', { 'aria-label': 'KV cache dtype' }, h('option', { value: '' }, 'auto'), h('option', { value: 'fp8' }, 'fp8'));
  // OCI: a CPU flex shape is planned only once sized (OCPUs or memory given); the deploy form starts from these
  private readonly flexOcpus = h('input', { type: 'number', min: 1, step: 1, placeholder: '—', 'aria-label': 'OCPUs (CPU flex shapes)' });
  private readonly flexMemory = h('input', { type: 'number', min: 1, step: 'any', placeholder: '—', 'aria-label': 'Memory GB (CPU flex shapes)' });
  private readonly planArea = h('div', { className: 'aqua-plan', 'aria-live': 'polite' });
  private readonly deployArea = h('div', { className: 'aqua-deploy' });
  private readonly progressArea = h('div', { className: 'aqua-progress', 'aria-live': 'polite' });

  /** Called when the selection changes, so the tab reopens with it after a reload. */
  onSelection: ((selected: string[], primary: string | null) => void) | null = null;

  constructor(
    private readonly ctx: AquaContext,
    readonly platform: string,
    initial: { selected?: string[]; primary?: string | null } = {}
  ) {
    super();
    this.selected = [...(initial.selected ?? [])];
    this.primary = initial.primary ?? null;
    this.addClass('aqua-plan-view');
    this.id = `aqua-lab-plan-${platform}`;
    this.title.label = `Plan & deploy (${platform})`;
    this.title.closable = true;
    for (const input of [this.search, this.size]) {
      input.addEventListener('input', () => this.drawCatalog());
    }
    this.task.addEventListener('change', () => this.drawCatalog());
    for (const input of [this.maxModelLen, this.concurrency, this.kvCacheDtype, this.flexOcpus, this.flexMemory]) {
      input.addEventListener('change', () => this.schedulePlan());
    }
    this.shapeFilter.addEventListener('change', () => void this.filterByShape());
    ctx.deploymentsChanged.connect(this.onDeploymentsChanged, this);
    this.node.append(
      h(
        'div',
        { className: 'aqua-plan-columns' },
        h(
          'section',
          { className: 'aqua-plan-left', 'aria-label': 'Catalog' },
          h('h3', {}, `Models on ${platform}`),
          h(
            'div',
            { className: 'aqua-filters' },
            this.search,
            this.task,
            h('label', {}, '≤ B params ', this.size),
            h('label', {}, 'Runs on ', this.shapeFilter)
          ),
          this.catalog
        ),
        h(
          'section',
          { className: 'aqua-plan-right', 'aria-label': 'Plan' },
          h('h3', {}, 'Selection'),
          this.chips,
          h(
            'div',
            { className: 'aqua-filters aqua-what-if', role: 'group', 'aria-label': 'What if' },
            h('label', {}, 'Context ', this.maxModelLen),
            h('label', {}, 'Concurrency ', this.concurrency),
            h('label', {}, 'KV cache ', this.kvCacheDtype),
            platform === 'oci' ? h('label', { title: 'Size a CPU flex shape (VM.Standard.E4.Flex …) so it is planned' }, 'OCPUs ', this.flexOcpus) : null,
            platform === 'oci' ? h('label', {}, 'Memory GB ', this.flexMemory) : null
          ),
          this.planArea,
          this.deployArea,
          this.progressArea
        )
      )
    );
    void this.load();
  }

  dispose(): void {
    this.ctx.deploymentsChanged.disconnect(this.onDeploymentsChanged, this);
    super.dispose();
  }

  /** A deployment was made, paused or deleted: what is free changed, so the plan is asked again. */
  private onDeploymentsChanged(_: AquaContext, platform: string): void {
    if (platform === this.platform && this.selected.length && this.grid) {
      this.schedulePlan();
    }
  }

  private async load(): Promise<void> {
    clear(this.catalog, h('p', { className: 'aqua-empty' }, 'Loading the catalog…'));
    try {
      const [models, shapes] = await Promise.all([
        requestAPI<DataList_CatalogModel_>('models', {}, { platform: this.platform }),
        requestAPI<DataList_Shape_>('shapes', {}, { platform: this.platform })
      ]);
      this.models = models.data;
      this.shapes = shapes.data;
    } catch (error) {
      clear(
        this.catalog,
        errorBox(describe(error)),
        h('button', { className: 'jp-mod-styled', onclick: () => void this.load() }, 'Retry')
      );
      return;
    }
    const tasks = [...new Set(this.models.map(m => m.task ?? '').filter(Boolean))].sort();
    clear(this.task, h('option', { value: '' }, 'any task'), tasks.map(t => h('option', { value: t }, t)));
    clear(
      this.shapeFilter,
      h('option', { value: '' }, 'any shape'),
      this.shapes.map(s => h('option', { value: s.name }, s.name))
    );
    this.node.dataset.models = String(this.models.length);
    this.drawCatalog();
    this.drawSelection();
  }

  /** "Runs on shape": a model whose deployment_config lists the shape, or one without a config (estimated). */
  private async filterByShape(): Promise<void> {
    const missing = this.models.filter(m => !this.runsOn.has(m.id));
    if (this.shapeFilter.value && missing.length) {
      clear(this.catalog, h('p', { className: 'aqua-empty' }, 'Reading the models’ shape configurations…'));
      await Promise.all(
        missing.map(m =>
          requestAPI<DeploymentConfig>(`models/${encodeURIComponent(m.id)}/config`, {}, { platform: this.platform })
            .then(c => this.runsOn.set(m.id, new Set(c.shape ?? [])))
            .catch(() => this.runsOn.set(m.id, null))
        )
      );
    }
    this.drawCatalog();
  }

  private drawCatalog(): void {
    const shape = this.shapeFilter.value;
    const allowed = shape
      ? new Set(this.models.filter(m => (this.runsOn.get(m.id)?.has(shape) ?? true)).map(m => m.id))
      : null;
    const max = this.size.value === '' ? null : Number(this.size.value);
    const shown = filterModels(this.models, { text: this.search.value, task: this.task.value, maxBillions: max }, allowed);
    if (!shown.length) {
      clear(this.catalog, h('p', { className: 'aqua-empty' }, 'No model matches: clear a filter.'));
      return;
    }
    clear(
      this.catalog,
      shown.map(m => {
        const on = this.selected.includes(m.id);
        return h(
          'div',
          { className: `aqua-catalog-row${on ? ' aqua-on' : ''}`, 'data-model': m.id },
          h(
            'label',
            { className: 'aqua-catalog-pick', title: m.id },
            h('input', { type: 'checkbox', checked: on, onchange: () => this.toggle(m.id) }),
            h('span', { className: 'aqua-model-name' }, breakable(m.name))
          ),
          h(
            'button',
            {
              className: 'aqua-chip-x aqua-add-copy',
              title: 'Add another copy (served under its own name)',
              'aria-label': `Add another copy of ${m.name}`,
              onclick: () => this.add(m.id)
            },
            '+'
          ),
          h('span', { className: 'aqua-muted' }, m.task ?? ''),
          h('span', { className: 'aqua-muted' }, m.parameter_count_b != null ? `${m.parameter_count_b} B` : '')
        );
      })
    );
  }

  private toggle(id: string): void {
    if (this.selected.includes(id)) {
      this.selected = this.selected.filter(s => s !== id);
      this.changed();
    } else {
      this.add(id);
    }
  }

  private add(id: string): void {
    this.selected = [...this.selected, id];
    this.changed();
  }

  private removeSlot(slot: number): void {
    this.selected = this.selected.filter((_, i) => i !== slot);
    this.changed();
  }

  private changed(): void {
    if (this.primary && !this.selected.includes(this.primary)) {
      this.primary = null;
    }
    performance.mark('aqua-plan-selection');
    this.onSelection?.(this.selected, this.primary);
    this.drawCatalog();
    this.drawSelection();
  }

  /** The served name the deploy form will propose: "name", or "name-2" for a second copy (so the
   * colour a slot has here is the one its model keeps once deployed: colours key on served names). */
  private slotLabel(slot: number): string {
    const id = this.selected[slot];
    const name = this.models.find(m => m.id === id)?.name ?? id;
    const copy = this.selected.slice(0, slot).filter(s => s === id).length;
    return copy ? `${name}-${copy + 1}` : name;
  }

  private drawSelection(): void {
    if (!this.selected.length) {
      clear(this.chips, h('p', { className: 'aqua-empty' }, 'Tick two or more models to see how they share a shape.'));
      clear(this.planArea);
      this.emptyDeploy();
      return;
    }
    const colours = slotColours(this.selected.map((_, slot) => this.slotLabel(slot)));
    clear(
      this.chips,
      this.selected.map((id, slot) =>
        h(
          'span',
          { className: 'aqua-chip', 'data-model': id },
          h('span', { className: 'aqua-swatch', style: `background:${colours[slot]}` }),
          h('span', { className: 'aqua-model-name' }, this.slotLabel(slot)),
          h(
            'label',
            { title: 'Favour this model when GPUs are short' },
            h('input', {
              type: 'radio',
              name: `${this.id}-primary`,
              checked: this.primary === id,
              'aria-label': `Primary model ${this.slotLabel(slot)}`,
              onchange: () => {
                this.primary = id;
                this.onSelection?.(this.selected, this.primary);
                this.schedulePlan();
              }
            }),
            ' primary'
          ),
          h(
            'button',
            { className: 'aqua-chip-x', 'aria-label': `Remove ${this.slotLabel(slot)}`, onclick: () => this.removeSlot(slot) },
            '×'
          )
        )
      )
    );
    this.schedulePlan();
  }

  /** No form (no selection, no plan, nothing fits): nor its marks, and a validation in flight is outdated. */
  private emptyDeploy(): void {
    ++this.validateSeq;
    clear(this.deployArea);
    for (const mark of ['valid', 'models', 'flex', 'shape']) {
      delete this.deployArea.dataset[mark];
    }
  }

  private schedulePlan(): void {
    this.node.dataset.plan = 'pending'; // the plan shown is about to be outdated: not "ok" meanwhile
    if (this.planTimer !== null) {
      window.clearTimeout(this.planTimer);
    }
    this.planTimer = window.setTimeout(() => void this.plan(), 20); // a burst of clicks makes one request
  }

  private async plan(): Promise<void> {
    const seq = ++this.planSeq;
    performance.mark('aqua-plan-request');
    this.node.dataset.plan = 'loading';
    let plan: Plan;
    const deployments = requestAPI<DataList_Deployment_>('deployments', {}, { platform: this.platform }).then(
      r => r.data,
      () => this.deployments // the plan still draws; who holds what is as last read
    );
    try {
      plan = await postJSON<Plan>(
        'plans',
        { model_ids: this.selected, primary_model_id: this.primary, ...this.whatIf() },
        { platform: this.platform }
      );
      this.deployments = await deployments;
    } catch (error) {
      if (seq === this.planSeq) {
        this.node.dataset.plan = 'error';
        clear(this.planArea, errorBox(describe(error)));
        this.emptyDeploy();
      }
      return;
    }
    if (seq !== this.planSeq) {
      return; // a newer selection is being planned
    }
    this.grid = planGrid(plan, this.shapes, this.selected, this.selected.map((_, slot) => this.slotLabel(slot)));
    const keep = this.chosen && this.grid.rows.find(r => r.shape === this.chosen!.shape);
    this.chosen = keep ?? this.cheapest(this.grid.rows);
    this.drawPlan();
    this.drawDeploy();
    this.node.dataset.plan = 'ok';
    performance.mark('aqua-plan-rendered');
    performance.measure('aqua-plan', 'aqua-plan-request', 'aqua-plan-rendered');
  }

  /** The what-if fields of POST plans the user set (unset ones are left to the configs). */
  private whatIf(): Pick<PlanRequest, 'max_model_len' | 'concurrency' | 'kv_cache_dtype' | 'ocpus' | 'memory_in_gbs'> {
    const asked: Pick<PlanRequest, 'max_model_len' | 'concurrency' | 'kv_cache_dtype' | 'ocpus' | 'memory_in_gbs'> = {};
    if (this.platform === 'oci') {
      const ocpus = Number(this.flexOcpus.value);
      const memory = Number(this.flexMemory.value);
      asked.ocpus = ocpus > 0 ? ocpus : undefined;
      asked.memory_in_gbs = memory > 0 ? memory : undefined;
    }
    const context = parseInt((this.maxModelLen as HTMLInputElement).value, 10);
    const concurrency = parseInt((this.concurrency as HTMLInputElement).value, 10);
    if (context > 0) {
      asked.max_model_len = context;
    }
    if (concurrency > 0) {
      asked.concurrency = concurrency;
    }
    if ((this.kvCacheDtype as HTMLSelectElement).value === 'fp8') {
      asked.kv_cache_dtype = 'fp8';
    }
    return asked;
  }

  private cheapest(rows: ShapeRow[]): ShapeRow | null {
    const cost = (r: ShapeRow) => this.shapes.find(s => s.name === r.shape)?.ranking?.cost ?? Infinity;
    return rows.length ? rows.reduce((a, b) => (cost(b) < cost(a) ? b : a)) : null;
  }

  private drawPlan(): void {
    const grid = this.grid!;
    const label = (slot: number | null, id: string | null) =>
      slot !== null && slot < this.selected.length ? this.slotLabel(slot) : id ?? 'free';
    // the platform's words for a slot: the chosen shape's, else the first shape's (cores on a CPU machine)
    const units = this.chosen?.units ?? unitsOf(this.shapes[0]);
    const held = this.shapes.flatMap(s => heldSlots(this.deployments, s.name).map(x => ({ ...x, shape: s.name })));
    const legend = h(
      'div',
      { className: 'aqua-legend', 'aria-label': 'Legend' },
      grid.colours.map((colour, slot) =>
        h('span', { className: 'aqua-legend-item' }, h('span', { className: 'aqua-swatch', style: `background:${colour}` }), this.slotLabel(slot))
      ),
      h('span', { className: 'aqua-legend-item' }, h('span', { className: 'aqua-swatch aqua-free' }), `free ${units.one}`),
      held.length
        ? h('span', { className: 'aqua-legend-item' }, h('span', { className: 'aqua-swatch aqua-held' }), `held by a running deployment`)
        : null
    );
    const rows = grid.rows.map(row => this.shapeRow(row, label));
    clear(
      this.planArea,
      h('h3', {}, `${units.cpu ? 'Core' : 'GPU'} split`),
      this.headline(grid, held),
      this.holders(held),
      this.warnings(grid.warnings),
      rows.length ? legend : null,
      h('div', { className: 'aqua-shape-rows', role: 'radiogroup', 'aria-label': 'Compatible shapes' }, rows),
      grid.incompatible.length
        ? h(
            'details',
            { className: 'aqua-incompatible', open: !rows.length },
            h('summary', {}, `${grid.incompatible.length} other shape${grid.incompatible.length === 1 ? '' : 's'} and why not`),
            h(
              'ul',
              {},
              grid.incompatible.map(i => h('li', { 'data-shape': i.shape }, h('strong', {}, i.shape), ': ', i.reasons.join('; ')))
            )
          )
        : null
    );
  }

  /** Why nothing fits, naming the cause: the slots running deployments hold when they are what is missing. */
  private headline(grid: PlanGrid, held: Array<HeldSlot & { shape: string }>): HTMLElement | null {
    if (grid.rows.length) {
      return null; // the planner's error_message is about the shapes offered, and some are
    }
    if (held.length) {
      const shape = this.shapes.find(s => s.name === held[0].shape);
      const units = unitsOf(shape);
      const onMachine = held.filter(x => x.shape === held[0].shape);
      const free = (shape?.gpu_specs?.gpu_count ?? 0) - onMachine.length;
      const what = free > 0 ? `only ${counted(free, units)} of ${shape!.name} ${free === 1 ? 'is' : 'are'} free` : `every ${units.one} of ${held[0].shape} is held`;
      return h(
        'div',
        { className: 'aqua-error aqua-headline', role: 'alert', 'data-cause': 'held' },
        `No shape fits this selection now: ${what} — ${heldText(onMachine, units)}. Pause (deactivate) one below to free its ${units.many}, or drop a model.`
      );
    }
    return h(
      'div',
      { className: 'aqua-error aqua-headline', role: 'alert', 'data-cause': 'shapes' },
      `${grid.error ?? 'No shape fits this selection'}${grid.incompatible.length ? ' — see why below.' : ''}`
    );
  }

  /** Each deployment that holds slots, with a button to pause it (and to bring back one paused here). */
  private holders(held: Array<HeldSlot & { shape: string }>): HTMLElement | null {
    const ids = [...new Set(held.map(x => x.deploymentId))];
    const paused = this.paused.filter(p => !ids.includes(p.id));
    if (!ids.length && !paused.length) {
      return null;
    }
    const message = h('div', { className: 'aqua-card-message', 'aria-live': 'polite' });
    const act = async (verb: 'deactivate' | 'activate', d: Deployment, button: HTMLButtonElement) => {
      button.disabled = true;
      clear(message, `${verb === 'deactivate' ? 'Pausing' : 'Activating'} ‘${d.display_name}’…`);
      try {
        await postJSON(`deployments/${encodeURIComponent(d.id)}/${verb}`, {}, { platform: this.platform });
        this.paused = verb === 'deactivate' ? [...this.paused, d] : this.paused.filter(p => p.id !== d.id);
        clear(message);
      } catch (error) {
        clear(message, errorBox(describe(error)));
        button.disabled = false;
        return;
      }
      this.ctx.deploymentsChanged.emit(this.platform); // this plan and the sidebar's list are asked again
      void this.ctx.execute(COMMANDS.deployments, { refresh: true });
    };
    const line = (d: Deployment, verb: 'deactivate' | 'activate', text: string) => {
      const button = h(
        'button',
        {
          className: 'jp-mod-styled aqua-small',
          'aria-label': `${verb === 'deactivate' ? 'Pause' : 'Activate'} ${d.display_name}`,
          title:
            verb === 'deactivate'
              ? 'Deactivate it: its model servers stop and free their slots; Activate brings it back'
              : 'Start it again on the slots it had, when they are free'
        },
        verb === 'deactivate' ? 'Pause' : 'Activate'
      );
      button.addEventListener('click', () => void act(verb, d, button));
      return h('li', { 'data-holder': d.id }, h('span', { className: 'aqua-card-name' }, text), ' ', button);
    };
    const byId = new Map(this.deployments.map(d => [d.id, d]));
    return h(
      'div',
      { className: 'aqua-holders' },
      h(
        'ul',
        {},
        ids.map(id => {
          const mine = held.filter(x => x.deploymentId === id);
          const units = unitsOf(this.shapes.find(s => s.name === mine[0].shape));
          return line(byId.get(id)!, 'deactivate', heldText(mine, units));
        }),
        paused.map(d => line(d, 'activate', `‘${d.display_name}’ paused here`))
      ),
      message
    );
  }

  /** Warnings once each; the long config notes folded under one line. */
  private warnings(warnings: string[]): HTMLElement | null {
    // what running deployments hold is drawn above with its buttons: not again as a warning
    const shown = [...new Set(warnings)].filter(w => !/ free \((plans use the free ones|shared on request)\): /.test(w));
    if (!shown.length) {
      return null;
    }
    return h(
      'details',
      { className: 'aqua-warnings' },
      h('summary', { className: 'aqua-warning' }, `${shown.length} warning${shown.length === 1 ? '' : 's'} about these models’ configs`),
      shown.map(w => h('div', { className: 'aqua-warning' }, w))
    );
  }

  private shapeRow(row: ShapeRow, label: (slot: number | null, id: string | null) => string): HTMLElement {
    const units = row.units;
    const held = heldSlots(this.deployments, row.shape);
    const total = row.totalGpus + held.length;
    return h(
      'div',
      {
        className: `aqua-shape-row${row === this.chosen ? ' aqua-chosen' : ''}`,
        role: 'radio',
        tabindex: 0,
        'aria-checked': String(row === this.chosen),
        'aria-label': `${row.shape}: ${row.usedGpus} of ${counted(row.totalGpus, units)} free used`,
        'data-shape': row.shape,
        'data-units': units.many,
        onclick: () => this.choose(row),
        onkeydown: ((e: KeyboardEvent) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            this.choose(row);
          }
        }) as EventListener
      },
      h(
        'div',
        { className: 'aqua-shape-name' },
        h('strong', {}, row.shape),
        h(
          'span',
          { className: 'aqua-muted' },
          units.cpu
            ? ` ${counted(total, units)}${row.gpuMemory ? ` · ${(row.gpuMemory * row.totalGpus).toFixed(1)} GB RAM free` : ''} · ${row.usedGpus}/${row.totalGpus} free ${units.many} used`
            : ` ${row.totalGpus}× ${row.gpuType ?? 'GPU'}${row.gpuMemory ? ` ${row.gpuMemory} GB` : ''} · ${row.usedGpus}/${row.totalGpus} used`,
          held.length ? ` · ${heldText(held, units)}` : ''
        )
      ),
      row.stacks ? this.gpuStacks(row, label) : null,
      h(
        'div',
        { className: 'aqua-gpus', hidden: row.stacks !== null && !held.length },
        held.map(x =>
          h(
            'span',
            { className: 'aqua-gpu aqua-held', 'data-held-by': x.displayName, title: `${units.one} ${x.slot}: held by ‘${x.displayName}’ (${x.state})` },
            String(x.slot)
          )
        ),
        (row.stacks ? [] : row.cells).map(c =>
          h(
            'span',
            {
              className: `aqua-gpu${c.owner ? '' : ' aqua-free'}`,
              style: c.colour ? `background:${c.colour}` : null,
              'data-owner': c.owner ?? '',
              'data-slot': c.slot ?? '',
              title: `${units.one}: ${c.owner ? label(c.slot, c.owner) : 'free'}`
            },
            units.cpu ? '' : String(c.index)
          )
        )
      ),
      h(
        'ul',
        { className: 'aqua-row-models' },
        row.models.map(m =>
          h(
            'li',
            {},
            h('span', { className: 'aqua-swatch', style: `background:${m.colour}` }),
            h('span', { className: 'aqua-model-name' }, breakable(label(m.slot, m.name))),
            ` ${counted(m.gpus, units)}`,
            m.budget != null && m.gpuIndices
              ? ` · budget ${m.budget.toFixed(1)} GB on GPU ${m.gpuIndices.join(', ')}`
              : m.memory != null && !units.cpu
                ? ` · ${m.memory} GB`
                : '',
            m.sharing ? h('span', { className: 'aqua-sharing' }, ` · ${m.sharing}`) : null,
            m.budget != null ? '' : m.need != null ? ` (needs ≈${m.need} GB${units.cpu ? ' RAM' : ''}${m.estimated ? ', estimated' : ''})` : m.estimated ? ' (estimated)' : '',
            m.fit
              ? h('div', { className: `aqua-muted aqua-memory${m.fit.fits ? '' : ' aqua-overflows'}` }, memoryLine(m.fit, m.suggested, units))
              : null
          )
        )
      ),
      row.notes.length
        ? h(
            'div',
            { className: 'aqua-muted' },
            // who shares with whom is on each model's line already
            row.notes.filter(n => (!held.length || !/ holds /.test(n)) && !/^'.*' shares GPU/.test(n)).join('; ')
          )
        : null
    );
  }

  /** Where models share GPUs: a row per GPU, a segment per model as wide as its budget, the room left. */
  private gpuStacks(row: ShapeRow, label: (slot: number | null, id: string | null) => string): HTMLElement {
    return h(
      'div',
      { className: 'aqua-gpu-stacks' },
      (row.stacks ?? []).map(stack =>
        h(
          'div',
          { className: 'aqua-gpu-stack', 'data-gpu': String(stack.index) },
          h('span', { className: 'aqua-gpu-stack-name' }, `GPU ${stack.index}`),
          h(
            'div',
            { className: 'aqua-gpu-stack-bar', title: `${stack.free.toFixed(1)} of ${stack.usable} GB free` },
            stack.parts.map(p =>
              h('span', {
                className: 'aqua-gpu-part',
                'data-slot': String(p.slot),
                style: `flex-basis:${((100 * p.budget) / (stack.usable || 1)).toFixed(2)}%;background:${p.colour}`,
                title: `${label(p.slot, p.name)}: ${p.budget.toFixed(2)} GB budget`
              })
            )
          ),
          h('span', { className: 'aqua-muted aqua-gpu-free' }, `${stack.free.toFixed(1)} GB free`)
        )
      )
    );
  }

  private choose(row: ShapeRow): void {
    this.chosen = row;
    this.drawPlan();
    this.drawDeploy();
    this.node.querySelector<HTMLElement>(`.aqua-shape-row[data-shape="${CSS.escape(row.shape)}"]`)?.focus();
  }

  private drawDeploy(): void {
    const row = this.chosen;
    if (!row) {
      this.emptyDeploy();
      return;
    }
    const gpuInputs: HTMLInputElement[] = [];
    const nameInputs: HTMLInputElement[] = [];
    const fieldErrors: HTMLElement[] = [];
    const general = h('div', { className: 'aqua-validation', 'aria-live': 'polite' });
    const displayName = h('input', {
      type: 'text',
      value: this.displayName ?? `${row.models.map(m => m.name.split('/').pop()).join(' + ')}`.slice(0, 80),
      'aria-label': 'Display name',
      oninput: () => {
        this.displayName = displayName.value;
      }
    });
    const units = row.units;
    const options = optionsOf(this.platform);
    const oci = this.platform === 'oci';
    const flex = oci && isFlexCpu(row.shape, this.shapes.find(s => s.name === row.shape), units.cpu);
    const slots = flex ? 'OCPUs' : units.cpu ? 'Cores' : 'GPUs'; // what a model's gpu_count counts here
    const advanced = options.map(([key, label, kind]) => {
      // a re-plan (another model checked, a what-if changed) redraws this form: what was typed stays
      const keep = (): void => {
        if (!FLEX.has(key)) {
          this.typed.set(key, input.value);
        }
        revalidate();
      };
      const input =
        kind === 'env' || kind === 'list'
          ? h('textarea', { rows: 2, 'aria-label': label, 'data-field': key, value: this.typed.get(key) || null, oninput: keep })
          : h('input', {
              type: kind,
              'aria-label': label,
              'data-field': key,
              step: 'any',
              placeholder: PLACEHOLDERS[key] ?? null,
              value:
                key === 'ocpus'
                  ? this.flexOcpus.value || null
                  : key === 'memory_in_gbs'
                    ? this.flexMemory.value || null
                    : this.typed.get(key) || null,
              oninput: keep
            });
      // the server names the field it refuses: its message goes right under that field
      const error = h('div', { className: 'aqua-field-error', role: 'alert', 'data-field': key });
      return { key, input, kind, error, label: h('label', {}, label, input, error) };
    });
    const deployType = h(
      'select',
      {
        'aria-label': 'Deployment type',
        onchange: () => {
          placeFields();
          revalidate();
        }
      },
      DEPLOYMENT_TYPES.filter(([t]) => t !== 'SINGLE' || row.models.length === 1).map(([t, label]) =>
        h('option', { value: t, selected: t === this.deploymentType }, label)
      )
    );
    const byoc = (): boolean => oci && deployType.value === 'HETEROGENEOUS';
    const advancedGrid = h('div', { className: 'aqua-advanced-grid' });
    const containerGrid = h('div', { className: 'aqua-advanced-grid' });
    const containerBox = h(
      'fieldset',
      { className: 'aqua-container-fields', hidden: true },
      h('legend', {}, 'Your container (HETEROGENEOUS: it serves every model of the group)'),
      containerGrid
    );
    const flexBox = flex
      ? h(
          'fieldset',
          { className: 'aqua-flex-fields' },
          h('legend', {}, `Size of ${row.shape} (no GPUs: models split the OCPUs and memory)`),
          h('div', { className: 'aqua-advanced-grid' }, advanced.filter(f => FLEX.has(f.key)).map(f => f.label))
        )
      : null;
    // the container's fields move to their own box for a BYOC group, and back into Advanced otherwise
    const placeFields = (): void => {
      this.deploymentType = deployType.value;
      containerBox.hidden = !byoc();
      for (const f of advanced) {
        if (FLEX.has(f.key)) {
          continue;
        }
        (CONTAINER.has(f.key) && (byoc() || BYOC_ONLY.has(f.key)) ? containerGrid : advancedGrid).append(f.label);
      }
    };
    const sent = (key: keyof DeploymentSpec): boolean => (FLEX.has(key) ? flex : !BYOC_ONLY.has(key) || byoc());
    const spec = (): DeploymentSpec => {
      const out: Record<string, unknown> = {
        display_name: displayName.value,
        instance_shape: row.shape,
        primary_model_id: this.primary,
        models: row.models.map((m, i) => ({
          model_id: m.id,
          gpu_count: gpuInputs[i].value === '' ? null : Number(gpuInputs[i].value),
          model_name: nameInputs[i].value || null
        }))
      };
      if (oci) {
        out.deployment_type = deployType.value;
      }
      for (const { key, input, kind } of advanced) {
        const value = input.value.trim();
        if (!value || !sent(key)) {
          continue;
        }
        if (kind === 'list') {
          out[key] = value.split('\n').map(a => a.trim()).filter(Boolean);
        } else if (kind === 'env') {
          out[key] = Object.fromEntries(
            value.split('\n').filter(Boolean).map(line => {
              const at = line.indexOf('=');
              return at < 0 ? [line.trim(), ''] : [line.slice(0, at).trim(), line.slice(at + 1)];
            })
          );
        } else {
          out[key] = kind === 'number' ? Number(value) : value;
        }
      }
      return out as unknown as DeploymentSpec;
    };
    const validate = async (): Promise<boolean> => {
      if (!form.isConnected) {
        return false; // a check typed into a form since replaced (a re-plan): it must not outdate the new one's
      }
      const seq = ++this.validateSeq;
      fieldErrors.forEach(e => clear(e));
      for (const f of advanced) {
        clear(f.error);
        f.input.removeAttribute('aria-invalid');
      }
      try {
        const result = await postJSON<ValidationResult>('deployments/validate', spec(), { platform: this.platform });
        if (seq === this.validateSeq) {
          const valid = `${result.used_gpus} of ${counted(row.totalGpus, units)} on ${result.instance_shape}`;
          // valid only when a create would go ahead: a request running deployments leave no room for is not
          clear(
            general,
            result.refused_now
              ? errorBox(`The request is valid (${valid}) but ${result.refused_now}.`)
              : h('div', { className: 'aqua-ok' }, `Valid: ${valid}`),
            result.warnings.map(w => h('div', { className: 'aqua-warning' }, w))
          );
          this.deployArea.dataset.valid = result.refused_now ? 'refused' : 'true';
          setDeployable(result.refused_now ? `Not now: ${result.refused_now}` : null);
        }
        return !result.refused_now;
      } catch (error) {
        if (seq !== this.validateSeq) {
          return false;
        }
        this.deployArea.dataset.valid = 'false';
        setDeployable('Fix what the form says first: the request is not valid');
        if (error instanceof ApiError && error.problems.length) {
          const rest = place(error.problems);
          clear(general, rest.length ? errorBox(rest.join('\n')) : null);
        } else {
          clear(general, errorBox(describe(error)));
        }
        return false;
      }
    };
    // each problem under the field it names; returns those that name no field of the form
    const place = (problems: Problem[]): string[] => {
      const rest: string[] = [];
      for (const p of problems) {
        const at = /^models\[(\d+)\]\.(gpu_count|model_name)/.exec(p.field);
        const slot = at ? fieldErrors[2 * Number(at[1]) + (at[2] === 'gpu_count' ? 0 : 1)] : undefined;
        const text = `${p.field}: ${p.message}${p.fix ? ` — ${p.fix}` : ''}`;
        const field = advanced.find(f => sent(f.key) && (p.field === f.key || p.field.startsWith(`${f.key}.`) || p.field.startsWith(`${f.key}[`)));
        if (slot) {
          clear(slot, text);
        } else if (field) {
          clear(field.error, text);
          field.input.setAttribute('aria-invalid', 'true');
          const fold = field.label.closest('details');
          if (fold) {
            fold.open = true; // a refused field folded away would leave the user guessing
          }
        } else {
          rest.push(text);
        }
      }
      return rest;
    };
    let validateTimer: number | null = null;
    const revalidate = () => {
      if (validateTimer !== null) {
        window.clearTimeout(validateTimer);
      }
      validateTimer = window.setTimeout(() => void validate(), 150);
    };
    const modelRows = row.models.map((m, i) => {
      const gpu = h('input', {
        type: 'number',
        min: 1,
        value: m.gpus,
        className: 'aqua-gpu-count',
        'aria-label': `${slots} for ${m.name}`,
        'data-model': m.id,
        oninput: revalidate
      });
      // a second copy of a model needs its own served name
      const copy = row.models.slice(0, i).filter(o => o.name === m.name).length;
      const served = h('input', {
        type: 'text',
        value: copy ? `${m.name}-${copy + 1}` : m.name,
        'aria-label': `Served name for ${m.name}`,
        oninput: revalidate
      });
      gpuInputs.push(gpu);
      nameInputs.push(served);
      const gpuError = h('div', { className: 'aqua-field-error', role: 'alert', 'data-field': `models[${i}].gpu_count` });
      const nameError = h('div', { className: 'aqua-field-error', role: 'alert', 'data-field': `models[${i}].model_name` });
      fieldErrors.push(gpuError, nameError);
      return h(
        'tr',
        {},
        h(
          'td',
          {},
          h('span', { className: 'aqua-swatch', style: `background:${m.colour}` }),
          h('span', { className: 'aqua-model-name' }, m.slot < this.selected.length ? this.slotLabel(m.slot) : m.name)
        ),
        h('td', {}, gpu, gpuError),
        h('td', {}, served, nameError)
      );
    });
    const deployButton = h('button', { className: 'jp-mod-styled jp-mod-accept', type: 'submit' }, 'Deploy');
    const bundled = this.platform === 'bundled' ? 'The bundled platform validates but deploys nothing: switch to local or oci to deploy.' : null;
    // a disabled Deploy says why in its tooltip
    function setDeployable(why: string | null): void {
      const reason = bundled ?? why;
      deployButton.disabled = reason !== null;
      if (reason) {
        deployButton.title = reason;
      } else {
        deployButton.removeAttribute('title');
      }
    }
    setDeployable('Checking the request…');
    const form = h(
      'form',
      {
        className: 'aqua-deploy-form',
        'aria-label': 'Deploy',
        onsubmit: ((e: Event) => {
          e.preventDefault();
          void (async () => {
            setDeployable('Deploying…');
            let ok = false;
            try {
              ok = await validate();
              if (ok) {
                await this.deploy(spec(), place);
              }
            } finally {
              if (ok) {
                setDeployable(null);
              }
            }
          })();
        }) as EventListener
      },
      h('h3', {}, `Deploy on ${row.shape}`),
      h(
        'table',
        { className: 'aqua-override' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Model'), h('th', {}, slots), h('th', {}, 'Served name'))),
        h('tbody', {}, modelRows)
      ),
      general,
      h('label', { className: 'aqua-field' }, 'Display name ', displayName),
      oci ? h('label', { className: 'aqua-field' }, 'Deployment type ', deployType) : null,
      oci ? containerBox : null,
      flexBox,
      advanced.length
        ? h(
            'details',
            { className: 'aqua-advanced', 'data-options': advanced.length },
            h('summary', {}, `Advanced options (${this.platform})`),
            advancedGrid
          )
        : null,
      bundled ? h('p', { className: 'aqua-muted' }, bundled) : null,
      deployButton
    );
    // the same shape planned again (a what-if changed, another deployment moved): GPU counts, served
    // names and options the user changed stay; a new shape starts from its own plan
    const old = this.deployArea.dataset.shape === row.shape ? this.deployArea.querySelector('form.aqua-deploy-form') : null;
    const focused = document.activeElement;
    this.deployArea.dataset.valid = 'pending';
    this.deployArea.dataset.models = String(row.models.length);
    this.deployArea.dataset.flex = String(flex);
    this.deployArea.dataset.shape = row.shape;
    clear(this.deployArea, form);
    placeFields();
    if (old) {
      carryUserState(old, form, focused);
    }
    const fold = form.querySelector('details.aqua-advanced') as HTMLDetailsElement | null;
    if (fold && advanced.some(f => advancedGrid.contains(f.label) && f.input.value !== '')) {
      fold.open = true; // options the user filled before the redraw stay in sight
    }
    void validate(); // at once: it also outdates a validation the previous form still awaits
  }

  private async deploy(spec: DeploymentSpec, place: (problems: Problem[]) => string[]): Promise<void> {
    clear(this.progressArea, 'Creating…');
    let deployment: Deployment;
    try {
      deployment = await postJSON<Deployment>('deployments', spec, { platform: this.platform });
    } catch (error) {
      // a create checks more than validate does (a BYOC group's image): its refusals go to their fields too
      const rest = error instanceof ApiError && error.problems.length ? place(error.problems) : [describe(error)];
      clear(this.progressArea, errorBox(rest.length ? rest.join('\n') : 'Not deployed: fix the fields marked above.'));
      return;
    }
    this.typed.clear(); // deployed: the next plan starts from its own defaults, not this one's options
    this.ctx.deploymentsChanged.emit(this.platform); // it holds slots now: plans see what is left
    void this.ctx.execute(COMMANDS.deployments, { refresh: true });
    await this.follow(deployment);
  }

  /** Show progress with per-model states until the deployment settles. */
  private async follow(deployment: Deployment): Promise<void> {
    const id = encodeURIComponent(deployment.id);
    let d = deployment;
    let failures = 0;
    for (;;) {
      this.drawProgress(d);
      if (DONE.has(d.state) || !this.isAttached) {
        break;
      }
      await new Promise(r => window.setTimeout(r, failures ? Math.min(30000, 2000 * 2 ** failures) : 1500));
      try {
        d = await requestAPI<Deployment>(`deployments/${id}`, {}, { platform: this.platform });
        failures = 0;
      } catch (error) {
        failures += 1;
        this.progressArea.append(errorBox(`${describe(error)} — retrying`));
      }
    }
    if (d.state === 'FAILED' || d.state === 'NEEDS_ATTENTION') {
      try {
        const logs = await requestAPI<Logs>(`deployments/${id}/logs`, {}, { platform: this.platform, lines: 20 });
        this.progressArea.append(h('pre', { className: 'aqua-log-text' }, logs.text || '(no log lines)'));
      } catch (error) {
        this.progressArea.append(errorBox(describe(error)));
      }
    }
    this.ctx.deploymentsChanged.emit(this.platform);
    void this.ctx.execute(COMMANDS.deployments, { refresh: true });
  }

  private drawProgress(d: Deployment): void {
    const states = d.model_states ?? [];
    this.progressArea.dataset.state = d.state;
    clear(
      this.progressArea,
      h('h3', {}, d.display_name, ' ', h('span', { className: `aqua-badge aqua-state-${d.state}` }, d.state)),
      h('progress', { max: 100, value: d.state === 'ACTIVE' ? 100 : d.progress ?? 0, 'aria-label': 'Deployment progress' }),
      h(
        'ul',
        { className: 'aqua-model-states' },
        states.map(s =>
          h(
            'li',
            { 'data-model': s.model_name },
            h('span', { className: 'aqua-model-name' }, s.model_name),
            ' ',
            h('span', { className: `aqua-badge aqua-state-${s.state}` }, s.state),
            s.detail ? h('span', { className: 'aqua-detail' }, ` ${s.detail}`) : null
          )
        )
      ),
      d.state === 'FAILED' || d.state === 'NEEDS_ATTENTION' ? errorBox(d.lifecycle_details ?? 'the deployment failed') : null,
      d.state === 'ACTIVE'
        ? h(
            'div',
            { className: 'aqua-toolbar' },
            h(
              'button',
              { className: 'jp-mod-styled jp-mod-accept', onclick: () => void this.ctx.execute(COMMANDS.chat, { deploymentId: d.id, platform: this.platform }) },
              'Open chat'
            ),
            d.models.length > 1
              ? h(
                  'button',
                  {
                    className: 'jp-mod-styled',
                    onclick: () => void this.ctx.execute(COMMANDS.chat, { deploymentId: d.id, platform: this.platform, compare: true })
                  },
                  'Compare'
                )
              : null
          )
        : null
    );
  }
}
