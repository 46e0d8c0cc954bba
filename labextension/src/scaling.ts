/**
 * A card's Scale form: a fixed instance count everywhere, and on OCI an autoscaling policy (one
 * predefined-metric rule, the CLI's `--autoscaling`).  The server checks both as the CLI's
 * `deployment update` does; its field errors (`autoscaling.scale_in_threshold` …) mark the input.
 * The local platform refuses autoscaling (one machine, fixed cores), so it is not offered there.
 */
import { h } from './dom';
import { ApiError, requestAPI } from './request';
import type { Autoscaling, Deployment, ScalingChange } from './schema';

type Act = (label: string, run: () => Promise<unknown>) => Promise<void>;

/** The platforms whose deployments take an autoscaling policy. */
export const AUTOSCALES = new Set(['oci']);

interface Rule {
  minimumInstanceCount?: number;
  maximumInstanceCount?: number;
  rules?: Array<{
    metricType?: string;
    scaleInConfiguration?: { threshold?: number };
    scaleOutConfiguration?: { threshold?: number };
  }>;
}

/** The running policy as the form's fields (the CLI's defaults where it has none). */
function current(d: Deployment): Required<Pick<Autoscaling, 'minimum_instance_count' | 'maximum_instance_count' | 'metric' | 'scale_in_threshold' | 'scale_out_threshold' | 'cool_down_in_seconds'>> & { on: boolean } {
  const policy = (d.scaling?.policy ?? {}) as { policyType?: string; coolDownInSeconds?: number; autoScalingPolicies?: Rule[] };
  const rule = policy.autoScalingPolicies?.[0];
  const first = rule?.rules?.[0];
  const count = d.scaling?.instance_count ?? 1;
  return {
    on: policy.policyType === 'AUTOSCALING',
    minimum_instance_count: rule?.minimumInstanceCount ?? count,
    maximum_instance_count: rule?.maximumInstanceCount ?? Math.max(2, count * 2),
    metric: first?.metricType === 'MEMORY_UTILIZATION' ? 'MEMORY_UTILIZATION' : 'CPU_UTILIZATION',
    scale_in_threshold: first?.scaleInConfiguration?.threshold ?? 20,
    scale_out_threshold: first?.scaleOutConfiguration?.threshold ?? 75,
    cool_down_in_seconds: policy.coolDownInSeconds ?? 600
  };
}

export function scalingForm(d: Deployment, platform: string, act: Act): { node: HTMLElement; toggle: () => void } {
  const count = d.scaling?.instance_count ?? d.shape_info?.instance_count ?? 1;
  const num = (label: string, value: number, attrs: Record<string, number> = {}) =>
    h('input', { type: 'number', step: 1, value, 'aria-label': `${label} of ${d.display_name}`, ...attrs });
  const instances = num('Instance count', count, { min: 1 });
  const autoscales = AUTOSCALES.has(d.platform ?? platform);
  const now = current(d);
  const mode = h(
    'select',
    { 'aria-label': `Scaling of ${d.display_name}` },
    h('option', { value: 'fixed', selected: !now.on }, 'Fixed instances'),
    h('option', { value: 'auto', selected: now.on }, 'Autoscaling')
  );
  const auto = {
    minimum_instance_count: num('Minimum instances', now.minimum_instance_count, { min: 1 }),
    maximum_instance_count: num('Maximum instances', now.maximum_instance_count, { min: 1 }),
    scale_in_threshold: num('Scale-in threshold', now.scale_in_threshold, { min: 0, max: 100 }),
    scale_out_threshold: num('Scale-out threshold', now.scale_out_threshold, { min: 0, max: 100 }),
    cool_down_in_seconds: num('Cool down', now.cool_down_in_seconds, { min: 0 })
  };
  const metric = h(
    'select',
    { 'aria-label': `Metric of ${d.display_name}` },
    h('option', { value: 'CPU_UTILIZATION', selected: now.metric === 'CPU_UTILIZATION' }, 'CPU utilisation'),
    h('option', { value: 'MEMORY_UTILIZATION', selected: now.metric === 'MEMORY_UTILIZATION' }, 'memory utilisation')
  );
  const autoFields = h(
    'fieldset',
    { className: 'aqua-autoscaling', 'data-role': 'autoscaling' },
    h('label', {}, 'Instances from ', auto.minimum_instance_count, ' to ', auto.maximum_instance_count),
    h('label', {}, 'on ', metric),
    h('label', {}, 'fewer below ', auto.scale_in_threshold, ' %, more above ', auto.scale_out_threshold, ' %'),
    h('label', {}, 'cool down ', auto.cool_down_in_seconds, ' s')
  );
  const fixedField = h('label', {}, `Instances (now ${count}) `, instances);
  const drawMode = () => {
    autoFields.hidden = mode.value !== 'auto';
    fixedField.hidden = mode.value === 'auto';
  };
  mode.addEventListener('change', drawMode);
  const value = (input: HTMLInputElement) => (input.value === '' ? null : Number(input.value));
  const change = (): ScalingChange =>
    autoscales && mode.value === 'auto'
      ? {
          autoscaling: {
            ...(Object.fromEntries(Object.entries(auto).map(([k, input]) => [k, value(input)])) as unknown as Autoscaling),
            metric: metric.value as Autoscaling['metric']
          }
        }
      : { instance_count: value(instances) };
  const inputs: Record<string, HTMLInputElement> = { instance_count: instances, ...Object.fromEntries(Object.entries(auto).map(([k, v]) => [`autoscaling.${k}`, v])) };
  const mark = (error: unknown) => {
    for (const [field, input] of Object.entries(inputs)) {
      const wrong = error instanceof ApiError && !!error.problemFor(field);
      input.setAttribute('aria-invalid', String(wrong));
    }
  };
  const node = h(
    'form',
    {
      className: 'aqua-scaling',
      hidden: true,
      'data-keep': 'scaling', // open and half filled, it stays so when its card is drawn again
      onsubmit: ((e: Event) => {
        e.preventDefault();
        const body = change();
        const label = body.autoscaling
          ? `Autoscaling ${body.autoscaling.minimum_instance_count}–${body.autoscaling.maximum_instance_count}`
          : `Scaling to ${instances.value}`;
        void act(label, async () => {
          mark(null);
          try {
            await requestAPI(`deployments/${encodeURIComponent(d.id)}/scaling`, { method: 'PUT', body: JSON.stringify(body) }, { platform });
          } catch (error) {
            mark(error);
            throw error;
          }
        });
      }) as EventListener
    },
    autoscales ? h('label', {}, mode, ' ') : null,
    fixedField,
    autoscales ? autoFields : null,
    h('button', { className: 'jp-mod-styled jp-mod-accept aqua-small', type: 'submit' }, 'Apply'),
    h(
      'span',
      { className: 'aqua-muted', 'data-role': 'no-zero' },
      d.platform === 'local'
        ? ' replicas of every model, behind the router; at least 1 (idle models sleep instead: idle_sleep_s)'
        : ' at least 1: an OCI model deployment cannot scale to zero (Deactivate stops its instances)'
    )
  );
  drawMode();
  if (!autoscales) {
    fixedField.hidden = false;
  }
  // closed, it forgets what was typed (and kept across the card's redraws): opened again, it shows the deployment's numbers
  const toggle = (): void => {
    node.hidden = !node.hidden;
    if (node.hidden) {
      node.reset();
      mark(null);
      drawMode();
    }
  };
  return { node, toggle };
}
