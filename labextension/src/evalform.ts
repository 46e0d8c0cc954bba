/** The parts of the Evaluations tab's form: which deployment and models, which dataset, which
 * metrics and parameters, and the fields only some platforms take.  Each part owns its inputs and
 * says what it contributes to the EvaluationSpec; the view composes them and sends the spec. */
import { clear, h } from './dom';
import { modelChoice, reportFolder } from './evaltable';
import type { Deployment, EvaluationConfig, EvaluationSpec } from './schema';

/** A form part that failed the user's input before anything was sent: the field and the text. */
export interface LocalProblem {
  field: string;
  text: string;
}

export function servedNames(d: Deployment): string[] {
  return d.models.map(m => m.model_name);
}

export function numberOr(value: string): number | string {
  const n = Number(value);
  return value.trim() !== '' && Number.isFinite(n) ? n : value;
}

/** The deployment and, below it, a checkbox per served model (all checked: one comparison). */
export function modelsPart(deployments: Deployment[], deploymentId: string | null) {
  const deployment = h(
    'select',
    { 'aria-label': 'Deployment' },
    deployments.map(d => h('option', { value: d.id, selected: d.id === deploymentId }, `${d.display_name} (${d.models.length} models)`))
  );
  const models = h('div', { className: 'aqua-eval-models', role: 'group', 'aria-label': 'Models' });
  const draw = () => {
    const d = deployments.find(x => x.id === deployment.value);
    models.replaceChildren(
      ...(d ? servedNames(d) : []).map(n =>
        h('label', { className: 'aqua-check' }, h('input', { type: 'checkbox', checked: true, 'data-model': n }), ` ${n}`)
      )
    );
  };
  deployment.addEventListener('change', draw);
  draw();
  const picked = (): { model?: string; error?: string } => {
    const all = Array.from(models.querySelectorAll<HTMLInputElement>('input[data-model]'));
    return modelChoice(
      all.map(i => i.dataset.model!),
      all.filter(i => i.checked).map(i => i.dataset.model!)
    );
  };
  return { deployment, models, picked };
}

/** The dataset: the bundled sample, a path on the server (or Object Storage), or an uploaded file. */
export function datasetPart(config: EvaluationConfig, group: string, onFile: (file: HTMLInputElement, note: HTMLElement) => void) {
  const choice = (value: string, label: string, checked = false) =>
    h('label', { className: 'aqua-check' }, h('input', { type: 'radio', name: `${group}-dataset`, value, checked }), ` ${label}`);
  const path = h('input', {
    type: 'text',
    className: 'aqua-eval-path',
    placeholder: config.dataset_hint || '/path/on/the/server/dataset.jsonl',
    'aria-label': 'Dataset path'
  });
  const objectStorage = config.fields?.includes('force_overwrite') ?? false;
  const file = h('input', { type: 'file', accept: '.jsonl', 'aria-label': 'Dataset file' });
  const note = h('div', { className: 'aqua-muted', 'aria-live': 'polite' });
  const node = h(
    'div',
    { className: 'aqua-eval-dataset', role: 'radiogroup', 'aria-label': 'Dataset' },
    h('div', {}, choice('sample', `Bundled sample (${config.sample_rows} rows)`, true)),
    h('div', {}, choice('path', objectStorage ? 'A path: ' : 'A file on the server: '), path),
    h('div', {}, choice('upload', 'Upload a .jsonl file: '), file),
    note,
    config.dataset_note ? h('div', { className: 'aqua-muted', 'data-role': 'dataset-note' }, config.dataset_note) : null
  );
  const pick = (value: string) => {
    (node.querySelector(`input[value="${value}"]`) as HTMLInputElement).checked = true;
  };
  path.addEventListener('input', () => pick('path'));
  file.addEventListener('change', () => {
    pick('upload');
    onFile(file, note);
  });
  /** The dataset_path to send; `uploaded` is what the server accepted from the file, if any. */
  const value = (uploaded: string | null): string | LocalProblem => {
    const kind = (node.querySelector('input[type="radio"]:checked') as HTMLInputElement | null)?.value ?? 'sample';
    if (kind === 'path') {
      return path.value.trim();
    }
    if (kind === 'upload') {
      return uploaded ?? { field: 'dataset_path', text: 'dataset_path: choose a .jsonl file that the server accepts first' };
    }
    return 'sample';
  };
  return { node, value };
}

/** Metrics (the platform's defaults ticked), generation parameters and the report folder, which
 * follows the name until the user edits it. */
export function scoringPart(config: EvaluationConfig, name: HTMLInputElement) {
  const metrics = h(
    'div',
    { className: 'aqua-eval-metrics', role: 'group', 'aria-label': 'Metrics' },
    config.metrics.map(m =>
      h(
        'label',
        { className: 'aqua-check', title: m.description ?? '' },
        h('input', { type: 'checkbox', checked: config.default_metrics.includes(m.name), 'data-metric': m.name }),
        ` ${m.label}`
      )
    )
  );
  const params = config.model_params as Record<string, number>;
  const maxTokens = h('input', { type: 'number', min: 1, step: 1, value: params.max_tokens ?? 64, 'aria-label': 'Max tokens' });
  const temperature = h('input', { type: 'number', min: 0, max: 2, step: 0.1, value: params.temperature ?? 0, 'aria-label': 'Temperature' });
  const reportPath = h('input', {
    type: 'text',
    value: config.reports_dir ? reportFolder(config.reports_dir, name.value) : '',
    className: 'aqua-eval-path',
    placeholder: config.report_path_hint || '/path/for/reports',
    'aria-label': 'Report folder'
  });
  let reportEdited = false;
  reportPath.addEventListener('input', () => (reportEdited = true));
  name.addEventListener('input', () => {
    if (!reportEdited && config.reports_dir) {
      reportPath.value = reportFolder(config.reports_dir, name.value);
    }
  });
  const apply = (spec: EvaluationSpec, model: string | undefined) => {
    spec.model_parameters = { max_tokens: numberOr(maxTokens.value), temperature: numberOr(temperature.value), ...(model ? { model } : {}) };
    spec.metrics = Array.from(metrics.querySelectorAll<HTMLInputElement>('input[data-metric]:checked')).map(i => ({
      name: i.dataset.metric as any,
      args: {}
    }));
    spec.report_path = reportPath.value.trim();
  };
  const parameters = h('span', {}, h('label', {}, 'max_tokens ', maxTokens), ' ', h('label', {}, 'temperature ', temperature));
  return { metrics, parameters, reportPath, apply };
}

type Row = (label: string, ...inputs: Array<Node | string>) => HTMLElement;

/** The fields only this platform takes (OCI: the job's shape and storage, the experiment, logs). */
export function platformPart(config: EvaluationConfig) {
  const only = new Set(config.fields ?? []);
  const defaults = (config.default ?? {}) as Record<string, any>;
  const shapeNames = Object.keys(config.shape ?? {});
  const shape = h(
    'select',
    { 'aria-label': 'Job shape' },
    (shapeNames.length ? shapeNames : [defaults.shape_name ?? '']).map(n => h('option', { value: n, selected: n === defaults.shape_name }, n))
  );
  const storage = h('input', { type: 'number', min: 50, step: 1, value: defaults.block_storage_size ?? 50, 'aria-label': 'Block storage (GB)' });
  const experiment = h('input', { type: 'text', placeholder: 'groups evaluations; made when new', 'aria-label': 'Experiment name' });
  const overwrite = h('input', { type: 'checkbox', 'aria-label': 'Replace a dataset of that name' });
  const logGroup = h('input', { type: 'text', className: 'aqua-eval-path', placeholder: 'ocid1.loggroup.oc1… (optional)', 'aria-label': 'Log group OCID' });
  const log = h('input', { type: 'text', className: 'aqua-eval-path', placeholder: 'ocid1.log.oc1… (optional, with its group)', 'aria-label': 'Log OCID' });
  const rows = (row: Row, slot: (field: string) => HTMLElement): Array<HTMLElement | null> => [
    only.has('shape_name') ? row('Job shape', shape, slot('shape_name')) : null,
    only.has('block_storage_size') ? row('Storage (GB)', storage, slot('block_storage_size')) : null,
    only.has('experiment_name') ? row('Experiment', experiment, slot('experiment_name')) : null,
    only.has('log_group_id') ? row('Log group', logGroup, slot('log_group_id')) : null,
    only.has('log_id') ? row('Log', log, slot('log_id')) : null,
    only.has('force_overwrite')
      ? row('', h('label', { className: 'aqua-check' }, overwrite, ' replace a dataset file of that name in the report folder'))
      : null
  ];
  const apply = (spec: EvaluationSpec) => {
    if (only.has('shape_name')) {
      spec.shape_name = shape.value;
    }
    if (only.has('block_storage_size')) {
      spec.block_storage_size = numberOr(storage.value) as number; // a bad number: the server names the field
    }
    if (only.has('experiment_name') && experiment.value.trim()) {
      spec.experiment_name = experiment.value.trim();
    }
    if (only.has('force_overwrite')) {
      spec.force_overwrite = overwrite.checked;
    }
    if (only.has('log_group_id') && logGroup.value.trim()) {
      spec.log_group_id = logGroup.value.trim();
    }
    if (only.has('log_id') && log.value.trim()) {
      spec.log_id = log.value.trim();
    }
  };
  return { rows, apply };
}

/** The metrics a judge model computes: aqua_lab's runner asks the judge, AQUA's container cannot. */
export const JUDGED = ['pairwise_judge', 'judge_score'];
export const NEEDS_NOTEBOOK = 'aqua_lab’s runner: choose Run on “this notebook” (AQUA’s container cannot call a judge model)';
/** Where the notebook runner's reports go by default: the Jupyter user's home, so the file browser opens them. */
export const NOTEBOOK_REPORTS = '~/aqua-lab-reports';

/** What the runner choice changes in the rest of the form. */
export interface RunnerTargets {
  name: HTMLInputElement;
  metrics: HTMLElement;
  reportPath: HTMLInputElement;
  dataset: HTMLElement;
  jobOnly: Array<HTMLElement | null>;
}

/** Who runs an evaluation where the platform has a job of its own (OCI): AQUA's container (its
 * metrics, the job's shape and logs) or aqua_lab's runner on this machine calling the deployment's
 * signed predict (every metric, the judge's included; dataset and reports are paths here).  Locally
 * aqua_lab's runner always runs it: no choice shown, no runner sent. */
export function runnerPart(config: EvaluationConfig, group: string, to: RunnerTargets) {
  if (config.platform !== 'oci') {
    return { node: null, apply: (_spec: EvaluationSpec) => undefined, notebook: () => false };
  }
  const choice = (value: string, label: string, checked = false) =>
    h('label', { className: 'aqua-check' }, h('input', { type: 'radio', name: `${group}-runner`, value, checked }), ` ${label}`);
  const note = h('div', { className: 'aqua-muted', 'data-role': 'judge-note' });
  const node = h(
    'div',
    { className: 'aqua-eval-runner', role: 'radiogroup', 'aria-label': 'Run on' },
    h('div', {}, choice('service', 'OCI job (AQUA’s container)', true)),
    h('div', {}, choice('notebook', 'this notebook (aqua_lab’s runner: judge metrics, leaderboard)')),
    note
  );
  const chosen = () => (node.querySelector('input[type="radio"]:checked') as HTMLInputElement | null)?.value ?? 'service';
  const datasetPath = to.dataset.querySelector<HTMLInputElement>('input[type="text"]');
  const datasetHint = datasetPath?.placeholder ?? '';
  let jobReports = to.reportPath.value;
  let notebookReports = '';
  const draw = () => {
    const here = chosen() === 'notebook';
    for (const row of [...to.jobOnly, to.dataset.querySelector<HTMLElement>('[data-role="dataset-note"]')]) {
      if (row) {
        row.style.display = here ? 'none' : ''; // a row's own display rule would beat the hidden attribute
      }
    }
    const judged: string[] = [];
    for (const name of JUDGED) {
      const box = to.metrics.querySelector<HTMLInputElement>(`input[data-metric="${name}"]`);
      if (box) {
        box.disabled = !here;
        box.checked &&= here;
        box.parentElement!.title = here ? '' : `${box.parentElement!.textContent!.trim()} needs ${NEEDS_NOTEBOOK}`;
        box.parentElement!.style.opacity = here ? '' : '0.6'; // greyed with its box, in both themes
        judged.push(box.parentElement!.textContent!.trim().split(' (')[0]);
      }
    }
    clear(note, here || !judged.length ? '' : `${judged.join(' and ')} need${judged.length > 1 ? '' : 's'} ${NEEDS_NOTEBOOK}`);
    // each runner keeps the report path the user gave it: a bucket for the job, a folder here for the notebook
    if (here) {
      jobReports = to.reportPath.value;
      to.reportPath.value = notebookReports || reportFolder(NOTEBOOK_REPORTS, to.name.value);
      to.reportPath.placeholder = '/path/for/reports on the server';
      datasetPath?.setAttribute('placeholder', '/path/on/the/server/dataset.jsonl'); // the runner here reads no bucket
    } else {
      notebookReports = to.reportPath.value;
      to.reportPath.value = jobReports;
      to.reportPath.placeholder = config.report_path_hint || '';
      datasetPath?.setAttribute('placeholder', datasetHint);
    }
  };
  node.addEventListener('change', draw);
  draw();
  const apply = (spec: EvaluationSpec) => {
    spec.runner = chosen() as EvaluationSpec['runner'];
  };
  return { node, apply, notebook: () => chosen() === 'notebook' };
}

/** A judge metric's problem (`metrics[2].args.judge.url`) → the judge field it goes under. */
export function judgeFieldOf(field: string): string | null {
  const m = /^metrics\[\d+\]\.args\.(rubric|judge(?:\.(?:url|api_key_env|model|deployment_id))?)\b/.exec(field);
  if (!m) {
    return null;
  }
  return m[1] === 'judge.url' || m[1] === 'judge.api_key_env' || m[1] === 'rubric' ? m[1] : 'judge';
}

export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** The judge of the judge metrics (shown while one is ticked): a model of the evaluated deployment
 * (default: its first), a model of another ACTIVE deployment, or an external OpenAI-compatible
 * endpoint; and the rubric, prefilled with the server's default.  The endpoint's key is named by an
 * environment variable of the server, as the server takes it: a key typed here would travel in the
 * evaluation's record and reports. */
export function judgePart(
  config: EvaluationConfig,
  deployments: Deployment[],
  deployment: HTMLSelectElement,
  metrics: HTMLElement,
  group: string,
  row: Row,
  slot: (field: string) => HTMLElement
) {
  const choice = (value: string, label: string, checked = false) =>
    h('input', { type: 'radio', name: `${group}-judge`, value, checked, 'aria-label': label });
  const here = h('select', { 'aria-label': 'Judge model of this deployment' });
  const other = h('select', { 'aria-label': 'Judge model of another deployment' });
  const url = h('input', { type: 'text', className: 'aqua-eval-path', placeholder: 'https://host/v1', 'aria-label': 'Judge URL' });
  const model = h('input', { type: 'text', placeholder: 'the model it serves', style: 'width:14em', 'aria-label': 'Judge endpoint model' });
  const keyEnv = h('input', {
    type: 'password',
    style: 'width:16em',
    placeholder: 'e.g. OPENAI_API_KEY (optional)',
    autocomplete: 'off',
    'aria-label': 'Judge API key variable',
    title: 'the environment variable of the Jupyter server that holds the key: the key itself never leaves the server'
  });
  const limit = config.judge_rubric_max_bytes || 8192;
  const rubric = h('textarea', { rows: 4, 'aria-label': 'Rubric', style: 'width:min(48em,100%);box-sizing:border-box' });
  rubric.value = config.judge_rubric ?? '';
  const count = h('div', { className: 'aqua-muted', 'data-role': 'rubric-count', 'aria-live': 'polite' });
  const counted = () => {
    const n = utf8Bytes(rubric.value);
    count.className = n > limit ? 'aqua-field-error' : 'aqua-muted';
    clear(count, `${n} / ${limit} bytes (${Math.round(limit / 1024)} KiB)${n > limit ? ' — too long: shorten the rubric' : ''}`);
  };
  rubric.addEventListener('input', counted);
  counted();
  const line = (...children: Array<Node | string>) => h('div', { className: 'aqua-judge-choice', style: 'margin:2px 0' }, ...children);
  const choices = h(
    'div',
    { role: 'radiogroup', 'aria-label': 'Judge' },
    line(h('label', { className: 'aqua-check' }, choice('here', 'a model of this deployment', true), ' a model of this deployment: '), here),
    line(h('label', { className: 'aqua-check' }, choice('other', 'a model of another deployment'), ' a model of another deployment: '), other),
    line(h('label', { className: 'aqua-check' }, choice('url', 'an external endpoint'), ' an external endpoint: '), url),
    h('div', { style: 'margin:2px 0 2px 1.6em' }, h('label', {}, 'model ', model), ' ', h('label', {}, 'API key variable ', keyEnv)),
    slot('judge.url'),
    slot('judge.api_key_env')
  );
  const pick = (value: string) => {
    (choices.querySelector(`input[value="${value}"]`) as HTMLInputElement).checked = true;
  };
  here.addEventListener('change', () => pick('here'));
  other.addEventListener('change', () => pick('other'));
  for (const input of [url, model, keyEnv]) {
    input.addEventListener('input', () => pick('url'));
  }
  const node = row(
    'Judge',
    choices,
    slot('judge'),
    h('div', { style: 'margin-top:6px' }, h('label', { className: 'aqua-muted', for: `${group}-rubric` }, 'Rubric (what the judge weighs)')),
    rubric,
    count,
    slot('rubric')
  );
  node.classList.add('aqua-eval-judge');
  rubric.id = `${group}-rubric`;
  /** The models to pick from follow the deployment: its own, and every other ACTIVE one's. */
  const models = () => {
    const d = deployments.find(x => x.id === deployment.value);
    here.replaceChildren(...(d ? servedNames(d) : []).map((n, i) => h('option', { value: n }, i ? n : `${n} (default)`)));
    const others = deployments.filter(x => x.id !== deployment.value);
    other.replaceChildren(
      others.length ? '' : h('option', { value: '' }, 'no other ACTIVE deployment'),
      ...others.map(x =>
        h('optgroup', { label: x.display_name }, servedNames(x).map(n => h('option', { value: JSON.stringify([x.id, n]) }, `${n} @ ${x.display_name}`)))
      )
    );
    const none = !others.length;
    other.disabled = none;
    (choices.querySelector('input[value="other"]') as HTMLInputElement).disabled = none;
    other.title = none ? 'no other ACTIVE deployment' : '';
    if (none && chosen() === 'other') {
      pick('here');
    }
  };
  const chosen = () => (choices.querySelector('input[type="radio"]:checked') as HTMLInputElement | null)?.value ?? 'here';
  /** Shown while a judge metric is ticked (and enabled: AQUA's job on OCI cannot call a judge). */
  const draw = () => {
    const ticked = JUDGED.some(n => metrics.querySelector<HTMLInputElement>(`input[data-metric="${n}"]`)?.checked);
    node.style.display = ticked ? '' : 'none';
  };
  deployment.addEventListener('change', models);
  metrics.addEventListener('change', draw);
  models();
  draw();
  /** The args every ticked judge metric gets, as the widgets' panel sends them: what is left as
   * the default (the first model, the default rubric) is left out. */
  const args = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const kind = chosen();
    if (kind === 'url') {
      out.judge = { url: url.value.trim(), model: model.value.trim() || null, api_key_env: keyEnv.value.trim() || null };
    } else if (kind === 'other' && other.value) {
      const [deploymentId, name] = JSON.parse(other.value) as [string, string];
      out.judge = { deployment_id: deploymentId, model: name };
    } else if (here.value && here.selectedIndex > 0) {
      out.judge = here.value;
    }
    if (rubric.value.trim() && rubric.value !== config.judge_rubric) {
      out.rubric = rubric.value;
    }
    return out;
  };
  const apply = (spec: EvaluationSpec) => {
    const judged = args();
    for (const m of spec.metrics ?? []) {
      if (JUDGED.includes(m.name)) {
        m.args = { ...judged };
      }
    }
  };
  return { node, draw, apply, rubric };
}
