/** A deployment's leaderboard (GET deployments/{id}/leaderboard): Bradley-Terry strengths on the Elo
 * scale with their 95 % intervals as bars, the win-rate matrix as a heat map with the comparisons per
 * pair, and which models the votes cannot tell apart yet — from blind votes, judge verdicts or both. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { clear, errorBox, h } from './dom';
import { describe, requestAPI } from './request';
import type { Leaderboard, Standing } from './schema';

const SVG = 'http://www.w3.org/2000/svg';
const SOURCES = [
  ['votes', 'blind votes'],
  ['judge', 'judge verdicts'],
  ['both', 'votes and verdicts']
] as const;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
  return el;
}

const round = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : String(Math.round(v)));

/** The strengths, best first: a dot at the Elo strength and a bar over its 95 % interval, on one axis. */
export function strengthChart(standings: Standing[]): SVGSVGElement {
  const rated = standings.filter(s => s.elo !== null);
  const width = 380;
  const label = 130;
  const row = 22;
  const height = row * standings.length + 24;
  const ends = rated.flatMap(s => [s.elo_low ?? s.elo!, s.elo_high ?? s.elo!]);
  let lo = Math.min(...ends, 1000);
  let hi = Math.max(...ends, 1000);
  const pad = Math.max(10, (hi - lo) * 0.08);
  lo = Math.floor((lo - pad) / 10) * 10;
  hi = Math.ceil((hi + pad) / 10) * 10;
  const x = (v: number) => label + ((v - lo) / (hi - lo)) * (width - label - 60);
  const chart = svg('svg', {
    class: 'aqua-strengths',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Strengths on the Elo scale with 95 % intervals'
  });
  const axisY = height - 18;
  chart.append(svg('line', { x1: x(lo), y1: axisY, x2: x(hi), y2: axisY, class: 'aqua-lb-axis' }));
  for (const tick of [lo, (lo + hi) / 2, hi]) {
    const t = svg('text', { x: x(tick), y: height - 4, 'text-anchor': 'middle', class: 'aqua-lb-tick' });
    t.textContent = round(tick);
    chart.append(t);
  }
  const mid = svg('line', { x1: x(1000), y1: 4, x2: x(1000), y2: axisY, class: 'aqua-lb-base' });
  chart.append(mid);
  standings.forEach((s, i) => {
    const y = 14 + i * row;
    const g = svg('g', { class: 'aqua-lb-row', 'data-model': s.model });
    const name = svg('text', { x: label - 8, y: y + 4, 'text-anchor': 'end', class: 'aqua-lb-name' });
    name.textContent = s.model.length > 22 ? `${s.model.slice(0, 21)}…` : s.model;
    const title = svg('title', {});
    title.textContent =
      s.elo === null
        ? `${s.model}: not compared yet`
        : `${s.model}: ${round(s.elo)} (95 % ${round(s.elo_low)}–${round(s.elo_high)}), ${s.comparisons} comparisons`;
    g.append(title, name);
    if (s.elo !== null) {
      if (s.elo_low !== null && s.elo_high !== null) {
        const [a, b] = [x(s.elo_low), x(s.elo_high)];
        g.append(
          svg('line', { x1: a, y1: y, x2: b, y2: y, class: 'aqua-lb-interval', 'data-low': s.elo_low, 'data-high': s.elo_high }),
          svg('line', { x1: a, y1: y - 5, x2: a, y2: y + 5, class: 'aqua-lb-interval' }),
          svg('line', { x1: b, y1: y - 5, x2: b, y2: y + 5, class: 'aqua-lb-interval' })
        );
      }
      g.append(svg('circle', { cx: x(s.elo), cy: y, r: 4, class: 'aqua-lb-point' }));
      const value = svg('text', { x: width - 4, y: y + 4, 'text-anchor': 'end', class: 'aqua-lb-value' });
      value.textContent = round(s.elo);
      g.append(value);
    } else {
      const none = svg('text', { x: label, y: y + 4, class: 'aqua-lb-tick' });
      none.textContent = 'not compared yet';
      g.append(none);
    }
    chart.append(g);
  });
  return chart;
}

/** Red below one half through transparent to blue above: the share of i's comparisons with j that i won.
 * Translucent, so the theme's own text colour stays readable on it in light and dark. */
export function heatColour(rate: number): string {
  const strength = Math.min(1, Math.abs(rate - 0.5) * 2);
  const [r, g, b] = rate >= 0.5 ? [33, 113, 181] : [214, 96, 77];
  return `rgba(${r}, ${g}, ${b}, ${(0.12 + 0.5 * strength).toFixed(2)})`;
}

/** The win-rate matrix as a heat map: row model's win share against the column model, n comparisons. */
export function winRateMap(board: Leaderboard): HTMLElement {
  const order = board.standings.map(s => board.models.indexOf(s.model));
  return h(
    'table',
    { className: 'aqua-heatmap', 'aria-label': 'Win rate of the row model against the column model' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'won against →'), order.map(j => h('th', { className: 'aqua-model-name', title: board.models[j] }, board.models[j])))
    ),
    h(
      'tbody',
      {},
      order.map(i =>
        h(
          'tr',
          { 'data-model': board.models[i] },
          h('th', { className: 'aqua-model-name', title: board.models[i] }, board.models[i]),
          order.map(j => {
            const rate = board.win_rate[i][j];
            const n = board.comparisons[i][j];
            if (i === j) {
              return h('td', { className: 'aqua-heat-self' }, '');
            }
            return h(
              'td',
              {
                className: 'aqua-heat',
                style: rate === null ? null : `background: ${heatColour(rate)}`,
                'data-rate': rate === null ? null : rate,
                'data-n': n,
                title: `${board.models[i]} vs ${board.models[j]}: ${n} comparison${n === 1 ? '' : 's'}`
              },
              rate === null ? '—' : `${Math.round(rate * 100)} %`,
              h('span', { className: 'aqua-muted aqua-heat-n' }, `n=${n}`)
            );
          })
        )
      )
    )
  );
}

function standingsTable(standings: Standing[]): HTMLElement {
  const cell = (text: string) => h('td', {}, text);
  return h(
    'table',
    { className: 'aqua-lb-table' },
    h('thead', {}, h('tr', {}, ['Rank', 'Model', 'Elo', '95 % interval', 'W / L / T', 'Comparisons'].map(t => h('th', {}, t)))),
    h(
      'tbody',
      {},
      standings.map(s =>
        h(
          'tr',
          { 'data-model': s.model },
          cell(s.rank === null ? '—' : String(s.rank)),
          h('td', { className: 'aqua-model-name', title: s.model }, s.model),
          cell(round(s.elo)),
          cell(s.elo_low === null ? '—' : `${round(s.elo_low)} – ${round(s.elo_high)}`),
          cell(`${s.wins} / ${s.losses} / ${s.ties}`),
          cell(String(s.comparisons))
        )
      )
    )
  );
}

export function renderLeaderboard(board: Leaderboard): HTMLElement[] {
  // the server words why intervals overlap (few comparisons, or many with no difference found), as the
  // CLI, widgets and reports show it
  const notes = board.notes ?? [];
  return [
    h('p', { className: 'aqua-muted' }, `${board.votes} comparison${board.votes === 1 ? '' : 's'} · ${board.resamples} bootstrap resamples`),
    notes.length ? h('ul', { className: 'aqua-lb-notes' }, notes.map(n => h('li', {}, n))) : null,
    board.votes
      ? h(
          'div',
          { className: 'aqua-lb-charts' },
          h('figure', { className: 'aqua-lb-figure' }, h('figcaption', {}, 'Strength (Elo scale, 95 % interval)'), strengthChart(board.standings)),
          h('figure', { className: 'aqua-lb-figure' }, h('figcaption', {}, 'Win rate (row against column), comparisons per pair'), winRateMap(board))
        )
      : null,
    board.votes ? standingsTable(board.standings) : h('p', { className: 'aqua-empty' }, 'No comparisons yet from this source.')
  ].filter((n): n is HTMLElement => n !== null);
}

/** The leaderboard of one deployment in a dialog; `data-render-ms` says how long it took from the call
 * (the click) to the drawn view. */
export async function showLeaderboard(deploymentId: string, title: string, platform: string): Promise<void> {
  const clicked = performance.now();
  const body = new Widget();
  body.addClass('aqua-leaderboard');
  body.node.dataset.state = 'loading';
  const source = h(
    'select',
    { 'aria-label': 'Source' },
    SOURCES.map(([value, text]) => h('option', { value }, text))
  );
  const content = h('div', { 'aria-live': 'polite' }, 'Loading…');
  let started = clicked;
  // only the source picked last is drawn: an older source's answer that comes back later is dropped
  let latest = 0;
  const load = async () => {
    const mine = ++latest;
    const asked = source.value;
    body.node.dataset.state = 'loading';
    let drawn: HTMLElement[];
    let state = 'ok';
    try {
      const board = await requestAPI<Leaderboard>(`deployments/${encodeURIComponent(deploymentId)}/leaderboard`, {}, {
        platform,
        source: asked
      });
      drawn = renderLeaderboard(board);
    } catch (error) {
      drawn = [errorBox(describe(error))];
      state = 'error';
    }
    if (mine !== latest) {
      return;
    }
    clear(content, drawn);
    Object.assign(body.node.dataset, { state, source: asked, renderMs: String(Math.round(performance.now() - started)) });
  };
  source.addEventListener('change', () => {
    started = performance.now();
    void load();
  });
  body.node.append(h('label', { className: 'aqua-field' }, 'From ', source), content);
  void load();
  await showDialog({ title: `Leaderboard: ${title}`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
}
