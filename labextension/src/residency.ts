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

/** "asleep 42 s · last wake 0.71 s at 10:02:03"; null when it never slept nor woke. */
export function residencyNote(s: ModelState, now = Date.now()): HTMLElement | null {
  const parts: string[] = [];
  if (s.state === 'SLEEPING' && s.asleep_since) {
    parts.push(`asleep ${ago(s.asleep_since, now)} (since ${clock(s.asleep_since)}): the next request wakes it`);
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

/** Planned vs measured, on one scale; null when nothing was measured (not resident, not local). */
export function memoryBar(m: ModelMemory | null | undefined): HTMLElement | null {
  if (!m || !m.rss_mib) {
    return null;
  }
  const planned = m.planned_mib ?? 0;
  const scale = Math.max(planned, m.rss_mib, 1);
  const plannedOther = planned - (m.planned_weights_mib ?? 0) - (m.planned_kv_cache_mib ?? 0);
  const engine = (m.weights_mib ?? 0) + (m.kv_cache_mib ?? 0) + (m.compute_mib ?? 0);
  const row = (label: string, bar: HTMLElement[], total: string) =>
    h('div', { className: 'aqua-mem-row' }, h('span', { className: 'aqua-mem-label' }, label), h('span', { className: 'aqua-mem-bar' }, bar), total);
  const error = m.error_pct != null ? ` · plan ${m.error_pct > 0 ? '+' : ''}${m.error_pct}%` : '';
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
              ['other', plannedOther, 'engine overhead']
            ],
            scale
          ),
          `${Math.round(planned)} MiB`
        )
      : null,
    row(
      'measured',
      segments(
        [
          ['weights', m.weights_mib, 'weights (engine)'],
          ['kv', m.kv_cache_mib, 'KV cache (engine)'],
          ['compute', m.compute_mib, 'compute buffers (engine)'],
          ['other', m.rss_mib - engine, 'rest of the process (RSS)']
        ],
        scale
      ),
      `${Math.round(m.rss_mib)} MiB RSS${error}`
    )
  );
}
