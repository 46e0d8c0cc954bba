/** The parts of the Evaluations tab's form: which deployment and models, which dataset, which
 * metrics and parameters, and the fields only some platforms take.  Each part owns its inputs and
 * says what it contributes to the EvaluationSpec; the view composes them and sends the spec. */
import { h } from './dom';
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
