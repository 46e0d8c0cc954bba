/**
 * A model's residency on a deployment card (issue 28): how long it has slept and its last wake, and
 * its memory as a bar per source — planned (weights / KV cache / other) next to measured (the
 * engine's weights / KV / compute buffers, and its process's RSS) — with the planner's error in %.
 */
import { h } from './dom';
import type { ModelMemory, ModelState } from './schema';

function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return seconds < 90 ? `${seconds} s` : seconds < 5400 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
}

function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "asleep for 42 s · last wake 0.71 s at 10:02:03"; null when it never slept nor woke. */
export function residencyNote(s: ModelState, now = Date.now()): HTMLElement | null {
  const parts: string[] = [];
  if (s.state === 'SLEEPING' && s.asleep_since) {
    parts.push(`asleep for ${ago(s.asleep_since, now)}`); // since when and why: the state's detail
  }
  if (s.state === 'LOADING') {
    parts.push('waking: loading its weights');
  }
  if (s.last_wake_s != null && s.last_woke_at) {
    parts.push(`last wake ${s.last_wake_s.toFixed(2)} s at ${clock(s.last_woke_at)}`);
  }
  return parts.length ? h('div', { className: 'aqua-residency', 'data-role': 'residency' }, parts.join(' · ')) : null;
}

function segments(parts: Array<[string, number | null | undefined, string]>, scale: number): HTMLElement[] {
  return parts
    .filter(([, mib]) => mib && mib > 0)
    .map(([kind, mib, label]) =>
      h('span', {
        className: `aqua-mem-${kind}`,
        style: `width:${((100 * mib!) / scale).toFixed(1)}%`,
        title: `${label}: ${Math.round(mib!)} MiB`
      })
    );
}

const KINDS: Record<string, string> = { weights: 'weights', kv: 'KV cache', compute: 'compute', other: 'other' };

/**
 * Planned vs measured, on one scale, with a key to the colours and the planner's error; null when
 * nothing was measured (not local, no process). Asleep, the engine's buffers are freed: the second
 * bar is what the sleeping process still holds.
 */
export function memoryBar(m: ModelMemory | null | undefined, state?: string): HTMLElement | null {
  if (!m || !m.rss_mib) {
    return null;
  }
  const asleep = state === 'SLEEPING';
  const planned = m.planned_mib ?? 0;
  // on a GPU the plan is GPU memory, which the driver counts and RSS does not see
  const onGpu = !asleep && !!m.gpu_mib;
  const held = onGpu ? (m.gpu_mib as number) : m.rss_mib;
  const source = onGpu ? 'GPU (driver)' : 'RSS';
  const scale = Math.max(planned, held, 1);
  const plannedOther = planned - (m.planned_weights_mib ?? 0) - (m.planned_kv_cache_mib ?? 0);
  const engine = asleep ? 0 : (m.weights_mib ?? 0) + (m.kv_cache_mib ?? 0) + (m.compute_mib ?? 0);
  const row = (label: string, bar: HTMLElement[], total: string) =>
    h(
      'div',
      { className: 'aqua-mem-row' },
      h('span', { className: 'aqua-mem-label' }, label),
      h('span', { className: 'aqua-mem-bar' }, bar),
      h('span', { className: 'aqua-mem-total' }, total)
    );
  const measured: Array<[string, number | null | undefined, string]> = asleep
    ? [['other', m.rss_mib, 'what the sleeping process still holds (RSS)']]
    : [
        ['weights', m.weights_mib, 'weights (engine)'],
        ['kv', m.kv_cache_mib, 'KV cache (engine)'],
        ['compute', m.compute_mib, 'compute buffers (engine)'],
        ['other', held - engine, `rest of the process (${source})`]
      ];
  const shown = new Set(['weights', 'kv', 'other', ...(asleep ? [] : ['compute'])]);
  const key = Object.entries(KINDS)
    .filter(([kind]) => shown.has(kind))
    .map(([kind, label]) => h('span', {}, h('span', { className: `aqua-mem-key aqua-mem-${kind}` }), label));
  const verdict = asleep
    ? planned
      ? `asleep: ${Math.round((100 * m.rss_mib) / planned)} % of the plan held`
      : 'asleep'
    : m.error_pct != null
      ? `plan ${m.error_pct > 0 ? '+' : ''}${m.error_pct} % vs ${source}`
      : source;
  return h(
    'div',
    { className: 'aqua-memory', 'data-role': 'memory', title: 'memory planned by the capacity planner vs measured now' },
    planned
      ? row(
          'planned',
          segments(
            [
              ['weights', m.planned_weights_mib, 'weights'],
              ['kv', m.planned_kv_cache_mib, 'KV cache'],
              ['other', plannedOther, 'engine: compute and output buffers, runtime']
            ],
            scale
          ),
          `${Math.round(planned)} MiB`
        )
      : null,
    row(asleep ? 'asleep' : onGpu ? 'GPU' : 'measured', segments(measured, scale), `${Math.round(held)} MiB`),
    h('div', { className: 'aqua-mem-legend' }, ...key, h('span', { className: 'aqua-mem-verdict' }, verdict))
  );
}
