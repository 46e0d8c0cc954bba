/** A deployment's per-model metrics (GET deployments/{id}/metrics): the figures the CLI and widgets
 * show, each series as a small plot, asked again every few seconds while the dialog is open. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { clear, errorBox, h } from './dom';
import { describe, requestAPI } from './request';
import type { Deployment, DeploymentMetrics, MetricPoint, ModelMetrics } from './schema';

const SVG = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 5000;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
  return el;
}

const fmt = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined ? '—' : v.toLocaleString('en', { maximumFractionDigits: digits });

const withUnit = (v: number | null | undefined, unit: string): string => (v === null || v === undefined ? '—' : `${fmt(v)}${unit}`);

/** One series as a line over the window, with its latest value and its peak. */
export function sparkline(title: string, points: Array<number | null>, unit = ''): HTMLElement {
  const width = 150;
  const height = 36;
  const values = points.map(v => v ?? 0);
  const peak = Math.max(0, ...values);
  const plot = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  plot.append(svg('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: 'aqua-spark-axis' }));
  if (values.length > 1 && peak > 0) {
    const step = width / (values.length - 1);
    const at = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / peak) * (height - 6)).toFixed(1)}`);
    plot.append(svg('polyline', { points: at.join(' '), class: 'aqua-spark-line', fill: 'none' }));
  }
  const last = [...points].reverse().find(v => v !== null && v !== undefined);
  return h(
    'figure',
    { className: 'aqua-spark', 'data-metric': title },
    h('figcaption', {}, title, h('span', { className: 'aqua-muted' }, ` now ${withUnit(last, unit)} · peak ${withUnit(peak, unit)}`)),
    plot
  );
}

export function modelMetrics(m: ModelMetrics): HTMLElement {
  const series = m.series ?? [];
  const pick = (f: (p: MetricPoint) => number | null | undefined) => series.map(p => f(p) ?? null);
  const figure = (name: string, value: string) => h('div', { className: 'aqua-figure', 'data-figure': name }, h('span', { className: 'aqua-muted' }, name), h('strong', {}, value));
  return h(
    'section',
    { className: 'aqua-model-metrics', 'data-model': m.model_name },
    h('h4', { className: 'aqua-model-name' }, m.model_name),
    h(
      'div',
      { className: 'aqua-figures' },
      figure('requests', fmt(m.requests)),
      figure('errors', fmt(m.errors)),
      figure('TTFT p50', withUnit(m.ttft_p50_ms, ' ms')),
      figure('TTFT p95', withUnit(m.ttft_p95_ms, ' ms')),
      figure('tokens/s', fmt(m.tokens_per_s, 1)),
      figure('in flight', fmt(m.in_flight)),
      figure('replicas', fmt(m.replicas))
    ),
    h(
      'div',
      { className: 'aqua-sparks' },
      sparkline('requests', pick(p => p.requests)),
      sparkline('errors', pick(p => p.errors)),
      sparkline('TTFT p95', pick(p => p.ttft_p95_ms), ' ms'),
      sparkline('tokens/s', pick(p => p.tokens_per_s))
    )
  );
}

export async function showMetrics(d: Deployment, platform: string): Promise<void> {
  const body = new Widget();
  body.addClass('aqua-metrics');
  const span = h(
    'select',
    { 'aria-label': 'Window' },
    ['5m', '15m', '1h', '1d'].map(w => h('option', { value: w, selected: w === '15m' }, `last ${w}`))
  );
  const content = h('div', { 'aria-live': 'polite' }, 'Loading…');
  let timer: number | null = null;
  let open = true;
  const load = async () => {
    try {
      const found = await requestAPI<DeploymentMetrics>(`deployments/${encodeURIComponent(d.id)}/metrics`, {}, { platform, window: span.value });
      clear(
        content,
        h('p', { className: 'aqua-muted' }, `from ${found.source} · window ${Math.round(found.window_s / 60)} min`),
        found.models.map(modelMetrics)
      );
      body.node.dataset.state = 'ok';
    } catch (error) {
      clear(content, errorBox(describe(error)));
      body.node.dataset.state = 'error';
    }
    if (open) {
      timer = window.setTimeout(() => void load(), REFRESH_MS);
    }
  };
  span.addEventListener('change', () => {
    window.clearTimeout(timer ?? undefined);
    void load();
  });
  body.node.append(h('label', {}, 'Window ', span), content);
  void load();
  await showDialog({ title: `Metrics: ${d.display_name}`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
  open = false;
  window.clearTimeout(timer ?? undefined);
}
