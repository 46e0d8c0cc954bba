/** The Evaluations tab: a platform's evaluations, a form to score a deployment's models on a dataset,
 * per-model progress while it runs, then the comparison table, a bar chart per score and the reports. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AquaContext } from './context';
import { carryUserState, clear, errorBox, h } from './dom';
import { datasetPart, judgeFieldOf, judgePart, LocalProblem, modelsPart, platformPart, runnerPart, scoringPart } from './evalform';
import { barPercents, comparison, etaText, formatScore } from './evaltable';
import { colourMap } from './palette';
import { ApiError, apiUrl, describe, postJSON, requestAPI, requestText } from './request';
import type {
  DataList_Deployment_,
  DataList_Evaluation_,
  Deployment,
  Evaluation,
  EvaluationConfig,
  EvaluationMetrics,
  EvaluationSpec,
  EvaluationStatus,
  ModelProgress,
  UploadedDataset
} from './schema';

const FINISHED = new Set(['SUCCEEDED', 'FAILED', 'CANCELED', 'DELETED']);
const finishedWhy = (state: string) => `It is ${state}: there is nothing left to cancel`;
/** Form fields that show the server's problems in place (a problem's field starts with one of them). */
const FIELDS = [
  'evaluation_name',
  'evaluation_source_id',
  'model_parameters',
  'dataset_path',
  'metrics',
  'report_path',
  'shape_name',
  'block_storage_size',
  'experiment_name',
  'log_group_id',
  'log_id',
  'runner'
];

export type ReportOpener = (title: string, html: string) => void;

export class EvaluationsView extends Widget {
  private config: EvaluationConfig | null = null;
  private deployments: Deployment[] = [];
  private selectedId: string | null;
  private listTimer: number | null = null;
  private statusTimer: number | null = null;
  private lastList = '';
  private uploaded: UploadedDataset | null = null;
  /** Turns of the form and of the uploads: an answer that comes after a later call's is outdated. */
  private forms = 0;
  private uploads = 0;
  /** The form's controls as drawn, to tell whether the user has entered anything since. */
  private drawnForm = '';
  /** The deployment the form opens on once the configuration has loaded. */
  private wanted: string | null;
  private readonly fieldErrors = new Map<string, HTMLElement>();
  private readonly formErrors = h('div', { className: 'aqua-eval-errors', 'aria-live': 'assertive' });
  /** What the server warned about at create (a judge that is one of the judged models), by evaluation:
   * its `details` later say only how it runs, so the warning is kept for when it is shown again. */
  private readonly warnings = new Map<string, string>();

  private readonly list = h('div', { className: 'aqua-eval-list', role: 'list', 'aria-label': 'Evaluations' });
  private readonly listStatus = h('div', { className: 'aqua-status', 'aria-live': 'polite' });
  private readonly main = h('section', { className: 'aqua-eval-main', 'aria-live': 'polite' });

  /** Called when the shown evaluation changes, so the tab reopens on it after a reload. */
  onSelect: ((evaluationId: string | null) => void) | null = null;

  constructor(
    private readonly ctx: AquaContext,
    readonly platform: string,
    private readonly openReport: ReportOpener,
    initial: { evaluationId?: string | null; deploymentId?: string | null } = {}
  ) {
    super();
    this.selectedId = initial.evaluationId ?? null;
    this.wanted = initial.deploymentId ?? null;
    this.addClass('aqua-eval-view');
    this.id = `aqua-lab-evaluations-${platform}`;
    this.title.label = `Evaluations (${platform})`;
    this.title.closable = true;
    this.node.dataset.state = 'loading';
    this.node.append(
      h(
        'div',
        { className: 'aqua-plan-columns' },
        h(
          'section',
          { className: 'aqua-eval-left', 'aria-label': 'Evaluations list' },
          h('h3', {}, `Evaluations on ${platform}`),
          h(
            'div',
            { className: 'aqua-toolbar' },
            h('button', { className: 'jp-mod-styled jp-mod-accept', onclick: () => void this.newEvaluation() }, 'New evaluation'),
            h(
              'button',
              { className: 'jp-mod-styled', 'aria-label': 'Refresh evaluations', onclick: () => void this.loadList() },
              '⟳'
            )
          ),
          this.listStatus,
          this.list
        ),
        this.main
      )
    );
    void this.load();
  }

  protected onAfterShow(_: Message): void {
    void this.loadList();
    // only a running evaluation needs its status again; a finished one keeps its result on screen
    const shown = this.main.querySelector<HTMLElement>('.aqua-eval-detail');
    if (this.selectedId && !(shown && shown.dataset.id === this.selectedId && FINISHED.has(shown.dataset.state ?? ''))) {
      this.pollStatus();
    }
  }

  protected onBeforeHide(_: Message): void {
    this.stopTimers();
  }

  dispose(): void {
    this.stopTimers();
    super.dispose();
  }

  private stopTimers(): void {
    for (const t of [this.listTimer, this.statusTimer]) {
      if (t !== null) {
        window.clearTimeout(t);
      }
    }
    this.listTimer = this.statusTimer = null;
  }

  private query(extra: Record<string, string | undefined> = {}) {
    return { platform: this.platform, ...extra };
  }

  private async load(): Promise<void> {
    try {
      this.config = await requestAPI<EvaluationConfig>('evaluations/config', {}, this.query());
    } catch (error) {
      this.node.dataset.state = 'error';
      clear(this.main, errorBox(describe(error)));
      return;
    }
    await this.loadList();
    this.node.dataset.state = 'ready';
    if (this.selectedId) {
      void this.showEvaluation(this.selectedId);
    } else {
      void this.showForm(this.wanted);
    }
  }

  // the list ---------------------------------------------------------------------------------------

  private async loadList(): Promise<void> {
    if (this.listTimer !== null) {
      window.clearTimeout(this.listTimer);
      this.listTimer = null;
    }
    let evaluations: Evaluation[];
    try {
      evaluations = (await requestAPI<DataList_Evaluation_>('evaluations', {}, this.query())).data;
      clear(this.listStatus);
    } catch (error) {
      clear(this.listStatus, errorBox(describe(error)));
      return;
    }
    const json = JSON.stringify(evaluations);
    if (json !== this.lastList) {
      this.lastList = json;
      this.drawList(evaluations);
    }
    if (this.isVisible) {
      const busy = evaluations.some(e => !FINISHED.has(e.state));
      this.listTimer = window.setTimeout(() => void this.loadList(), (busy ? 3 : this.ctx.preferences.pollInterval) * 1000);
    }
  }

  private drawList(evaluations: Evaluation[]): void {
    if (!evaluations.length) {
      clear(this.list, h('p', { className: 'aqua-empty' }, 'No evaluations yet. Choose “New evaluation” to score a deployment’s models.'));
      return;
    }
    const newest = [...evaluations].sort((a, b) => (b.created_on ?? '').localeCompare(a.created_on ?? ''));
    // each item is updated in place: drawn anew every poll while one runs, it would drop the keyboard focus
    const before = new Map([...this.list.querySelectorAll<HTMLElement>('.aqua-eval-item')].map(b => [b.dataset.id, b]));
    const items = newest.map(e => {
      const item =
        before.get(e.id) ??
        h('button', { className: 'aqua-eval-item', role: 'listitem', 'data-id': e.id, onclick: () => void this.showEvaluation(e.id) });
      item.dataset.state = e.state;
      item.setAttribute('aria-label', `Evaluation ${e.name}, ${e.state}`);
      item.replaceChildren(
        h(
          'span',
          { className: 'aqua-card-head' },
          h('span', { className: 'aqua-card-name' }, e.name),
          h('span', { className: `aqua-badge aqua-state-${e.state}` }, e.state)
        ),
        h('span', { className: 'aqua-card-meta' }, (e.models ?? []).map(m => m.model).join(', ') || e.model),
        h('span', { className: 'aqua-card-meta' }, when(e.created_on))
      );
      return item;
    });
    if (items.length !== this.list.children.length || items.some((item, i) => this.list.children[i] !== item)) {
      const focused = document.activeElement;
      clear(this.list, items); // a new one on top, one gone: moved, the focused item loses the focus
      if (focused instanceof HTMLElement && items.includes(focused) && document.activeElement !== focused) {
        focused.focus();
      }
    }
    this.markChosen();
  }

  private markChosen(): void {
    for (const item of Array.from(this.list.querySelectorAll<HTMLElement>('.aqua-eval-item'))) {
      item.classList.toggle('aqua-chosen', item.dataset.id === this.selectedId);
    }
  }

  // the form ---------------------------------------------------------------------------------------

  /** Show the form for a new evaluation, on `deploymentId` when given.  A form already shown keeps
   * what the user entered: on its own deployment (or none named) it only takes the focus; for another
   * deployment the user is asked first, since a click on a card must neither lose their work unasked
   * nor be ignored. */
  async newEvaluation(deploymentId: string | null = null): Promise<void> {
    if (this.node.dataset.state === 'loading') {
      if (deploymentId) {
        // the form, on it, is drawn once the configuration has loaded: the click wins over a tab restored on an evaluation
        this.wanted = deploymentId;
        this.selectedId = null;
      }
      return;
    }
    const form = this.main.querySelector<HTMLElement>('.aqua-eval-form');
    if (form && !this.selectedId) {
      const current = form.querySelector<HTMLSelectElement>('select[aria-label="Deployment"]')?.value ?? null;
      const entered = formState(this.main) !== this.drawnForm;
      if (!deploymentId || deploymentId === current || (entered && !(await this.replaceAgreed(current, deploymentId)))) {
        if (form.isConnected) {
          form.querySelector<HTMLElement>('input, select, textarea')?.focus();
          return;
        }
      }
    }
    return this.showForm(deploymentId);
  }

  private async replaceAgreed(from: string | null, to: string): Promise<boolean> {
    const name = (id: string | null) => this.deployments.find(d => d.id === id)?.display_name ?? id ?? 'a deployment';
    const answer = await showDialog({
      title: 'Replace the form you started?',
      body: `The new evaluation form holds what you entered for ${name(from)}. Replace it with a fresh form for ${name(to)}, or keep it?`,
      buttons: [Dialog.cancelButton({ label: 'Keep my form' }), Dialog.warnButton({ label: 'Replace' })],
      defaultButton: 0 // Enter keeps the user's work
    });
    return answer.button.accept;
  }

  private async showForm(deploymentId: string | null = null): Promise<void> {
    const turn = ++this.forms;
    this.select(null);
    const config = this.config;
    if (!config) {
      return;
    }
    clear(this.main, h('p', { className: 'aqua-empty' }, 'Loading deployments…'));
    const deployments = await this.activeDeployments();
    // a later call (another Evaluate click) or an evaluation opened meanwhile owns the view now
    if (turn !== this.forms || this.selectedId) {
      return;
    }
    if (typeof deployments === 'string') {
      clear(this.main, errorBox(deployments));
      return;
    }
    this.deployments = deployments;
    clear(this.formErrors);
    if (!this.deployments.length) {
      const none = `No active deployment on ${this.platform}. Deploy models first (“New deployment” in the AQUA Lab sidebar), then evaluate them here.`;
      clear(this.main, h('h3', {}, 'New evaluation'), h('p', { className: 'aqua-empty' }, none), this.formErrors);
      return;
    }
    this.fieldErrors.clear();
    this.uploaded = null;
    this.uploads++; // a file still checking belongs to the form being replaced
    const slot = (field: string) => {
      const el = h('div', { className: 'aqua-field-error', 'data-field': field, role: 'alert' });
      this.fieldErrors.set(field, el);
      return el;
    };
    const name = h('input', { type: 'text', value: `evaluation ${clock()}`, 'aria-label': 'Evaluation name' });
    const target = modelsPart(this.deployments, deploymentId);
    const dataset = datasetPart(config, this.id, (file, note) => void this.upload(file, note));
    const scoring = scoringPart(config, name);
    const platformOnly = platformPart(config);
    const row = (label: string, ...inputs: Array<Node | string>) =>
      h('div', { className: 'aqua-form-row' }, h('span', { className: 'aqua-form-label' }, label), h('div', {}, ...inputs));
    const jobOnly = platformOnly.rows(row, slot);
    const runner = runnerPart(config, this.id, { name, metrics: scoring.metrics, reportPath: scoring.reportPath, dataset: dataset.node, jobOnly });
    const judge = judgePart(config, this.deployments, target.deployment, scoring.metrics, this.id, row, slot);
    runner.node?.addEventListener('change', judge.draw); // AQUA's job unticks the judge metrics
    const start = h('button', { className: 'jp-mod-styled jp-mod-accept' }, 'Start evaluation');
    start.addEventListener('click', () => {
      this.clearFieldErrors();
      clear(this.formErrors);
      const picked = target.picked();
      const datasetPath = dataset.value(this.uploaded?.dataset_path ?? null);
      if (picked.error || typeof datasetPath !== 'string') {
        const problem = picked.error ? { field: 'models', text: `models: ${picked.error}` } : (datasetPath as LocalProblem);
        this.showFieldError(problem.field, problem.text);
        return;
      }
      const spec = { evaluation_source_id: target.deployment.value, evaluation_name: name.value, dataset_path: datasetPath } as EvaluationSpec;
      scoring.apply(spec, picked.model);
      judge.apply(spec);
      if (!runner.notebook()) {
        platformOnly.apply(spec); // the job's shape, storage and logs: aqua_lab's runner here takes none
      }
      runner.apply(spec);
      void this.startEvaluation(spec, start);
    });
    clear(
      this.main,
      h(
        'div',
        { className: 'aqua-eval-form' },
        h('h3', {}, 'New evaluation'),
        row('Name', name, slot('evaluation_name')),
        row('Deployment', target.deployment, slot('evaluation_source_id')),
        row('Models', target.models, h('div', { className: 'aqua-muted' }, 'All checked: one comparison of every model.'), slot('models')),
        runner.node ? row('Run on', runner.node, slot('runner')) : null,
        row('Dataset', dataset.node, slot('dataset_path')),
        row('Metrics', scoring.metrics, slot('metrics')),
        judge.node,
        row('Parameters', scoring.parameters, slot('model_parameters')),
        row('Reports to', scoring.reportPath, slot('report_path')),
        jobOnly,
        h('div', { className: 'aqua-toolbar' }, start),
        this.formErrors
      )
    );
    this.drawnForm = formState(this.main);
  }

  /** The platform's ACTIVE deployments (the ones an evaluation can score), or why they are unavailable. */
  private async activeDeployments(): Promise<Deployment[] | string> {
    try {
      const all = (await requestAPI<DataList_Deployment_>('deployments', {}, this.query())).data;
      return all.filter(d => d.state === 'ACTIVE');
    } catch (error) {
      return describe(error);
    }
  }

  /** Create the evaluation and open it; each problem the server names goes next to its field. */
  private async startEvaluation(spec: EvaluationSpec, start: HTMLButtonElement): Promise<void> {
    const errors = this.formErrors;
    start.disabled = true;
    clear(errors, 'Starting…');
    try {
      const created = await postJSON<Evaluation>('evaluations', spec, this.query());
      clear(errors);
      if (created.details) {
        this.warnings.set(created.id, created.details);
      }
      void this.loadList();
      void this.showEvaluation(created.id);
    } catch (error) {
      // the box above says what happened, and lists what has no field
      const problems = error instanceof ApiError ? error.problems : [];
      // a judge problem is the same for each ticked judge metric: said once, without the metric's index
      const where = (field: string) => (judgeFieldOf(field) ? field.replace(/^metrics\[\d+\]\.args\./, '') : field);
      const placed = problems.filter(p => this.showFieldError(fieldOf(p.field), problemText(where(p.field), p)));
      clear(errors, errorBox(placed.length === problems.length && placed.length ? (error as Error).message : describe(error)));
    } finally {
      start.disabled = false;
    }
  }

  private async upload(file: HTMLInputElement, note: HTMLElement): Promise<void> {
    // the file chosen last wins, whichever check answers last
    const turn = ++this.uploads;
    this.uploaded = null;
    this.clearFieldErrors();
    clear(this.formErrors); // about the form as it was before this file
    const chosen = file.files?.[0];
    if (!chosen) {
      clear(note);
      return;
    }
    clear(note, `Checking ${chosen.name}…`);
    try {
      const content = await chosen.text();
      const stored = await postJSON<UploadedDataset>('evaluations/datasets', { filename: chosen.name, content }, this.query());
      if (turn !== this.uploads) {
        return;
      }
      this.uploaded = stored;
      const categories = Object.entries(stored.categories ?? {})
        .map(([c, n]) => `${c || 'uncategorised'} ${n}`)
        .join(', ');
      clear(note, h('span', { className: 'aqua-ok' }, `✓ ${stored.filename}: ${stored.rows} rows`), categories ? ` (${categories})` : '');
    } catch (error) {
      if (turn !== this.uploads) {
        return;
      }
      clear(note);
      const problems = error instanceof ApiError ? error.problems : [];
      for (const p of problems) {
        this.showFieldError('dataset_path', problemText(p.field.replace(/^content/, chosen.name), p));
      }
      if (!problems.length) {
        this.showFieldError('dataset_path', describe(error));
      }
    }
  }

  private clearFieldErrors(): void {
    for (const el of this.fieldErrors.values()) {
      clear(el);
    }
  }

  /** Show `text` under a form field; false when the form has no such field. */
  private showFieldError(field: string, text: string): boolean {
    const el = this.fieldErrors.get(field);
    if (el && !Array.from(el.children).some(c => c.textContent === text)) {
      el.append(h('div', {}, text));
    }
    return !!el;
  }

  // one evaluation ---------------------------------------------------------------------------------

  private select(evaluationId: string | null): void {
    this.selectedId = evaluationId;
    if (this.statusTimer !== null) {
      window.clearTimeout(this.statusTimer);
      this.statusTimer = null;
    }
    this.markChosen();
    this.onSelect?.(evaluationId);
  }

  /** The detail of `evaluationId` when it is the one shown. */
  private shownDetail(evaluationId: string): HTMLElement | null {
    return this.main.querySelector<HTMLElement>(`.aqua-eval-detail[data-id="${CSS.escape(evaluationId)}"]`);
  }

  private async showEvaluation(evaluationId: string): Promise<void> {
    this.select(evaluationId);
    // drawn again (it finished): the old copy stays until the new one takes over what the user saw in it
    if (!this.shownDetail(evaluationId)) {
      clear(this.main, h('p', { className: 'aqua-empty' }, 'Loading the evaluation…'));
    }
    let e: Evaluation;
    try {
      e = await requestAPI<Evaluation>(`evaluations/${encodeURIComponent(evaluationId)}`, {}, this.query());
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        await this.showForm(); // gone (deleted elsewhere): say so above a fresh form
        clear(this.formErrors, errorBox(describe(error)));
        return;
      }
      clear(this.main, errorBox(describe(error)));
      return;
    }
    if (this.selectedId !== evaluationId) {
      return;
    }
    // a refusal stays when the view is drawn again; an answer that comes after goes to the copy shown then
    const message = h('div', { className: 'aqua-card-message', 'aria-live': 'polite', 'data-keep': 'message', 'data-keep-children': '' });
    const shown = () => this.shownDetail(e.id)?.querySelector<HTMLElement>('.aqua-card-message') ?? message;
    const cancel = h(
      'button',
      {
        className: 'jp-mod-styled',
        'aria-label': `Cancel ${e.name}`,
        disabled: FINISHED.has(e.state),
        title: FINISHED.has(e.state) ? finishedWhy(e.state) : null
      },
      'Cancel'
    );
    cancel.addEventListener('click', async () => {
      clear(shown(), 'Canceling…');
      try {
        await postJSON(`evaluations/${encodeURIComponent(e.id)}/cancel`, {}, this.query());
        clear(shown());
      } catch (error) {
        clear(shown(), errorBox(describe(error)));
      }
      this.pollStatus(0);
      void this.loadList();
    });
    const remove = h('button', { className: 'jp-mod-styled', 'aria-label': `Delete ${e.name}` }, 'Delete');
    remove.addEventListener('click', () => void this.confirmDelete(e, shown));
    const detail = h(
      'div',
      { className: 'aqua-eval-detail', 'data-id': e.id, 'data-state': e.state },
      h(
        'div',
        { className: 'aqua-card-head' },
        h('h3', { className: 'aqua-card-name' }, e.name),
        h('span', { className: `aqua-badge aqua-state-${e.state}`, 'data-role': 'state' }, e.state)
      ),
      h(
        'div',
        { className: 'aqua-card-meta' },
        `deployment ${e.deployment_id} · dataset ${e.dataset_path ?? '—'} · metrics ${(e.metrics ?? []).map(m => m.name).join(', ')} · ${when(e.created_on)}`
      ),
      h('div', { className: 'aqua-card-meta' }, `reports in ${e.report_path}`),
      platformLinks(e),
      h('div', { className: 'aqua-toolbar' }, cancel, remove),
      this.warnings.has(e.id) ? h('div', { className: 'aqua-warning', role: 'status', 'data-role': 'warning' }, `⚠ ${this.warnings.get(e.id)}`) : null,
      message,
      h('div', { className: 'aqua-eval-progress', 'aria-label': 'Progress' }),
      h('div', { className: 'aqua-detail', 'data-role': 'details' }),
      h('div', { className: 'aqua-eval-result' })
    );
    const old = this.shownDetail(e.id);
    const focused = document.activeElement;
    clear(this.main, detail);
    if (old) {
      carryUserState(old, detail, focused);
    }
    this.drawStatus(detail, statusOf(e));
    if (FINISHED.has(e.state)) {
      void this.showResult(detail, e);
    } else {
      this.pollStatus();
    }
  }

  /** Poll the light status route while the shown evaluation runs and the tab is visible. */
  private pollStatus(delay = 1000): void {
    if (this.statusTimer !== null) {
      window.clearTimeout(this.statusTimer);
    }
    const id = this.selectedId;
    if (!id || !this.isVisible) {
      this.statusTimer = null;
      return;
    }
    this.statusTimer = window.setTimeout(async () => {
      this.statusTimer = null;
      const detail = this.shownDetail(id);
      if (!detail || this.selectedId !== id) {
        return;
      }
      let status: EvaluationStatus;
      try {
        status = await requestAPI<EvaluationStatus>(`evaluations/${encodeURIComponent(id)}/status`, {}, this.query());
      } catch (error) {
        const note = detail.querySelector('[data-role="details"]')!;
        clear(note, errorBox(`${describe(error)} — retrying`));
        this.pollStatus(5000);
        return;
      }
      if (this.selectedId !== id) {
        return;
      }
      this.drawStatus(detail, status);
      if (status.finished) {
        void this.loadList();
        void this.showEvaluation(id); // the whole evaluation again: its report paths, then the result
      } else {
        this.pollStatus();
      }
    }, delay);
  }

  private drawStatus(detail: HTMLElement, s: EvaluationStatus): void {
    detail.dataset.state = s.state;
    const badge = detail.querySelector<HTMLElement>('[data-role="state"]')!;
    badge.className = `aqua-badge aqua-state-${s.state}`;
    badge.textContent = s.state;
    const cancel = detail.querySelector<HTMLButtonElement>('button[aria-label^="Cancel "]');
    if (cancel) {
      cancel.disabled = s.finished;
      cancel.title = s.finished ? finishedWhy(s.state) : '';
    }
    const progress = detail.querySelector('.aqua-eval-progress')!;
    // AQUA's job reports only its run's state; aqua_lab's runner (local, or the notebook's on OCI) counts rows
    if (this.config?.progress === 'state' && !(s.models ?? []).some(m => (m.rows_total ?? 0) > 0)) {
      clear(progress, (s.models ?? []).map(m => stateRow(m)));
      // each row says its job run's details; the joined line would only repeat them
      const details = detail.querySelector('[data-role="details"]')!;
      clear(details, (s.models ?? []).some(m => m.details) ? '' : (s.lifecycle_details ?? ''));
      return;
    }
    const tints = colourMap((s.models ?? []).map(m => m.model));
    clear(
      progress,
      (s.models ?? []).map(m => {
        const total = m.rows_total ?? 0;
        const done = m.rows_done ?? 0;
        const pct = total ? Math.round((done / total) * 100) : 0;
        const failed = m.rows_failed ? ` · ${m.rows_failed} failed` : '';
        const eta = m.state === 'IN_PROGRESS' ? etaText(m.eta_s) : '';
        return h(
          'div',
          { className: 'aqua-eval-progress-row', 'data-model': m.model, 'data-state': m.state, 'data-done': done, 'data-total': total },
          h('span', { className: 'aqua-model-name' }, m.model),
          h(
            'div',
            {
              className: 'aqua-bar-track',
              role: 'progressbar',
              'aria-label': `${m.model} progress`,
              'aria-valuemin': 0,
              'aria-valuemax': total,
              'aria-valuenow': done
            },
            h('div', { className: 'aqua-bar-fill', style: `width:${pct}%;background:${tints.get(m.model)}` })
          ),
          h(
            'span',
            { className: 'aqua-eval-progress-text' },
            `${done} / ${total}${failed}`,
            eta ? ` · ${eta}` : '',
            ' ',
            h('span', { className: `aqua-badge aqua-state-${m.state}` }, m.state)
          )
        );
      })
    );
    const details = detail.querySelector('[data-role="details"]')!;
    clear(details, s.lifecycle_details ?? '');
  }

  private async showResult(detail: HTMLElement, e: Evaluation): Promise<void> {
    const area = detail.querySelector('.aqua-eval-result')!;
    if (e.state !== 'SUCCEEDED') {
      clear(area, e.state === 'FAILED' ? errorBox(`Failed: ${e.details ?? 'no reason given'}`) : h('p', { className: 'aqua-empty' }, `${e.state}: no report.`));
      return;
    }
    clear(area, h('p', { className: 'aqua-empty' }, 'Loading the scores…'));
    let metrics: EvaluationMetrics;
    try {
      metrics = await requestAPI<EvaluationMetrics>(`evaluations/${encodeURIComponent(e.id)}/metrics`, {}, this.query());
    } catch (error) {
      clear(area, errorBox(describe(error)));
      return;
    }
    const table = comparison(metrics);
    const colourOf = colourMap(table.rows.map(r => r.model));
    const reports = h(
      'div',
      { className: 'aqua-eval-reports' },
      h('span', { className: 'aqua-form-label' }, 'Reports'),
      this.reportLinks(e, null, table.rows.length > 1 ? 'Comparison report' : 'Report'),
      table.rows.length > 1 ? table.rows.map(r => this.reportLinks(e, r.model, `${r.model} report`)) : null
    );
    clear(
      area,
      h('h3', {}, 'Comparison (median per row)'),
      h(
        'div',
        { className: 'aqua-table-scroll' },
        h(
          'table',
          { className: 'aqua-eval-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'model'), table.columns.map(c => h('th', { title: `${c.metric}${c.higherIsBetter ? '' : ' (lower is better)'}` }, c.label)))),
          h(
            'tbody',
            {},
            table.rows.map(r =>
              h(
                'tr',
                { 'data-model': r.model },
                h('th', {}, h('span', { className: 'aqua-swatch', style: `background:${colourOf.get(r.model)}` }), ' ', r.model),
                table.columns.map(c =>
                  h(
                    'td',
                    { 'data-key': c.key, className: table.best[c.key]?.includes(r.model) ? 'aqua-best' : '' },
                    formatScore(r.values[c.key])
                  )
                )
              )
            )
          )
        )
      ),
      h(
        'div',
        { className: 'aqua-eval-charts' },
        table.columns.map(c => {
          const values = table.rows.map(r => r.values[c.key] ?? null);
          const widths = barPercents(values, c.top);
          return h(
            'figure',
            { className: 'aqua-eval-chart', 'data-key': c.key },
            h('figcaption', {}, c.label, c.higherIsBetter ? '' : ' (lower is better)'),
            table.rows.map((r, i) =>
              h(
                'div',
                { className: 'aqua-chart-row', title: `${r.model}: ${formatScore(values[i])}` },
                h('span', { className: 'aqua-chart-label' }, r.model),
                h('div', { className: 'aqua-bar-track' }, h('div', { className: 'aqua-bar-fill', style: `width:${widths[i]}%;background:${colourOf.get(r.model)}` })),
                h('span', { className: 'aqua-chart-value' }, formatScore(values[i]))
              )
            )
          );
        })
      ),
      reports
    );
  }

  /** Open a report in a JupyterLab tab (sandboxed, no script runs) or in a new browser tab. */
  private reportLinks(e: Evaluation, model: string | null, label: string): HTMLElement {
    const query = this.query({ format: 'html', model: model ?? undefined });
    const endpoint = `evaluations/${encodeURIComponent(e.id)}/report`;
    const note = h('span', { className: 'aqua-field-error' });
    const open = h('button', { className: 'jp-mod-styled aqua-small', 'aria-label': `Open ${label}` }, label);
    open.addEventListener('click', async () => {
      clear(note);
      try {
        this.openReport(`${e.name}: ${model ?? 'comparison'}`, await requestText(endpoint, query));
      } catch (error) {
        clear(note, describe(error));
      }
    });
    return h(
      'span',
      { className: 'aqua-report-link' },
      open,
      h('a', { href: apiUrl(endpoint, query), target: '_blank', rel: 'noopener noreferrer', title: 'in a new browser tab', 'aria-label': `${label} in a new browser tab` }, '↗'),
      note
    );
  }

  private async confirmDelete(e: Evaluation, message: () => HTMLElement): Promise<void> {
    const answer = await showDialog({
      title: 'Delete evaluation',
      body: `Delete “${e.name}”? A running evaluation stops; its report files in ${e.report_path} stay.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!answer.button.accept) {
      return;
    }
    clear(message(), 'Deleting…');
    try {
      await requestAPI(`evaluations/${encodeURIComponent(e.id)}`, { method: 'DELETE' }, this.query());
    } catch (error) {
      clear(message(), errorBox(describe(error)));
      return;
    }
    await this.loadList();
    void this.showForm();
  }
}

/** A Widget showing a report page in a sandboxed frame: its HTML cannot run scripts or reach the lab. */
export class ReportView extends Widget {
  constructor(title: string, html: string) {
    super();
    this.addClass('aqua-report-view');
    this.title.label = title;
    this.title.closable = true;
    const frame = h('iframe', { sandbox: '', title, className: 'aqua-report-frame' });
    frame.srcdoc = html;
    this.node.append(frame);
  }
}

/** A model whose platform counts no rows (OCI: the job run's state only): its state, and while it
 * runs an indeterminate bar, never a percentage the platform did not report. */
function stateRow(m: ModelProgress): HTMLElement {
  const running = !FINISHED.has(m.state);
  return h(
    'div',
    { className: 'aqua-eval-progress-row', 'data-model': m.model, 'data-state': m.state },
    h('span', { className: 'aqua-model-name', title: m.evaluation_id ?? '' }, m.model),
    running
      ? h('div', { className: 'aqua-bar-track aqua-indeterminate', role: 'progressbar', 'aria-label': `${m.model}: ${m.state}` }, h('div', { className: 'aqua-bar-fill' }))
      : h('div', {}),
    h(
      'span',
      { className: 'aqua-eval-progress-text' },
      h('span', { className: `aqua-badge aqua-state-${m.state}` }, m.state),
      m.details ? h('span', { className: 'aqua-muted' }, ` ${m.details}`) : ''
    )
  );
}

/** OCI: the experiment, the job run and its logs in the console (absent on the local platform). */
function platformLinks(e: Evaluation): HTMLElement | null {
  const link = (label: string, url: string | undefined) =>
    url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', className: 'aqua-eval-link' }, `${label} ↗`) : null;
  const parts = [
    e.experiment?.name ? `experiment ${e.experiment.name}` : null,
    e.shape_info?.instance_shape ? `job shape ${e.shape_info.instance_shape}` : null,
    link('job run', e.job?.url),
    link('logs', e.log?.url || e.log_group?.url)
  ].filter(Boolean) as Array<string | HTMLElement>;
  if (!parts.length) {
    return null;
  }
  return h('div', { className: 'aqua-card-meta', 'data-role': 'oci' }, ...parts.flatMap((p, i) => (i ? [' · ', p] : [p])));
}

function statusOf(e: Evaluation): EvaluationStatus {
  const models = e.models ?? [];
  return {
    id: e.id,
    name: e.name,
    state: e.state,
    lifecycle_state: e.state,
    lifecycle_details: e.details,
    finished: FINISHED.has(e.state),
    rows_done: models.reduce((n, m) => n + (m.rows_done ?? 0), 0),
    rows_total: models.reduce((n, m) => n + (m.rows_total ?? 0), 0),
    models
  };
}

/** The form field a server problem belongs to: `dataset_path line 3: prompt` → dataset_path. */
function fieldOf(field: string): string {
  const judged = judgeFieldOf(field);
  if (judged) {
    return judged;
  }
  if (field === 'model_parameters.model') {
    return 'models'; // the served name the checkboxes chose
  }
  return FIELDS.find(f => field === f || field.startsWith(f + ' ') || field.startsWith(f + '.') || field.startsWith(f + '[')) ?? '';
}

function problemText(where: string, p: { message: string; fix?: string | null }): string {
  return `${where}: ${p.message}${p.fix ? ` — ${p.fix}` : ''}`;
}

/** What the form's controls hold: a form whose state differs from the drawn one holds the user's input. */
function formState(form: Element): string {
  const controls = form.querySelectorAll<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>('input, textarea, select');
  return JSON.stringify([...controls].map(c => (c instanceof HTMLInputElement && (c.type === 'checkbox' || c.type === 'radio') ? c.checked : c.value)));
}

function clock(): string {
  const d = new Date();
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function when(created: string | null | undefined): string {
  if (!created) {
    return '';
  }
  const t = new Date(created);
  return Number.isNaN(t.getTime()) ? created : t.toLocaleString();
}
