/** A deployment's per-model metrics (GET deployments/{id}/metrics): the figures the CLI and widgets
 * show, each series as a small plot, asked again every few seconds while the dialog is open. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { errorBox, h } from './dom';
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

/** Makes `into`'s children like `fresh`'s, keeping every node that is already equal (or differs only
 * below), so a refresh leaves hover, selection and scroll where they were. */
function patchChildren(into: Element, fresh: Element): void {
  const next = [...fresh.childNodes];
  next.forEach((node, i) => {
    const old = into.childNodes[i];
    if (!old) {
      into.append(node);
    } else if (old instanceof Element && node instanceof Element && sameTagAndAttributes(old, node)) {
      patchChildren(old, node);
    } else if (!old.isEqualNode(node)) {
      old.replaceWith(node);
    }
  });
  while (into.childNodes.length > next.length) {
    into.lastChild?.remove();
  }
}

function sameTagAndAttributes(a: Element, b: Element): boolean {
  return (
    a.tagName === b.tagName &&
    a.attributes.length === b.attributes.length &&
    [...b.attributes].every(x => a.getAttribute(x.name) === x.value)
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
  // One poll loop per dialog: only the latest load may draw and ask again, so a window switched while
  // a load is in flight neither lets the older answer win nor starts a second loop.
  let latest = 0;
  let timer: number | undefined;
  let open = true;
  const load = async () => {
    const mine = ++latest;
    const asked = span.value;
    window.clearTimeout(timer);
    let drawn: HTMLElement;
    let state = 'ok';
    try {
      const found = await requestAPI<DeploymentMetrics>(`deployments/${encodeURIComponent(d.id)}/metrics`, {}, { platform, window: asked });
      drawn = h(
        'div',
        {},
        h('p', { className: 'aqua-muted' }, `from ${found.source} · window ${Math.round(found.window_s / 60)} min`),
        found.models.map(modelMetrics)
      );
    } catch (error) {
      drawn = h('div', {}, errorBox(describe(error)));
      state = 'error';
    }
    if (mine !== latest || !open) {
      return;
    }
    patchChildren(content, drawn);
    Object.assign(body.node.dataset, { state, window: asked });
    timer = window.setTimeout(() => void load(), REFRESH_MS);
  };
  span.addEventListener('change', () => void load());
  body.node.append(h('label', {}, 'Window ', span), content);
  void load();
  await showDialog({ title: `Metrics: ${d.display_name}`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
  open = false;
  window.clearTimeout(timer);
}
