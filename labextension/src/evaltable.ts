/** The Evaluations view's arithmetic, kept apart from the DOM so it is unit-tested: the comparison
 * table (one row per model, one column per score key), bar lengths, ETA words, which models a form asks for. */
import type { EvaluationMetrics } from './schema';

export interface ScoreColumn {
  key: string; // a per-row score key: rouge1, bleu, bertscore_f1 …; or a generation figure
  metric: string;
  label: string;
  higherIsBetter: boolean;
  /** the top of the score's range when it has a fixed one (BLEU: 100), else null */
  top: number | null;
}

/** Scores on a fixed scale other than 0–1 (sacrebleu's BLEU is 0–100). */
const RANGES: Record<string, number> = { bleu: 100 };
/** How fast each model answered, from the report's generation figures, after the scores. */
const GENERATION: Array<[string, string, boolean]> = [
  ['latency_ms_p50', 'latency p50 (ms)', false],
  ['tokens_per_s_mean', 'tokens/s', true]
];

export interface ComparisonRow {
  model: string;
  values: Record<string, number | null>; // median per score key
  counts: Record<string, number>;
}

export interface Comparison {
  columns: ScoreColumn[];
  rows: ComparisonRow[];
  best: Record<string, string[]>; // per key, the model(s) with the best median
}

/** Medians of every model's score keys, columns in the order the metrics list them. */
export function comparison(metrics: EvaluationMetrics): Comparison {
  const columns: ScoreColumn[] = [];
  const seen = new Set<string>();
  for (const m of metrics.models) {
    for (const s of m.metrics) {
      for (const key of s.keys.length ? s.keys : Object.keys(s.summary)) {
        if (!seen.has(key)) {
          seen.add(key);
          columns.push({
            key,
            metric: s.name,
            label: s.keys.length > 1 ? key : s.label,
            higherIsBetter: s.higher_is_better ?? true,
            top: RANGES[key] ?? null
          });
        }
      }
    }
  }
  const rows = metrics.models.map(m => {
    const values: Record<string, number | null> = {};
    const counts: Record<string, number> = {};
    for (const s of m.metrics) {
      for (const [key, stats] of Object.entries(s.summary)) {
        values[key] = typeof stats.median === 'number' ? stats.median : null;
        counts[key] = stats.count ?? 0;
      }
    }
    for (const [key] of GENERATION) {
      const v = (m.generation ?? {})[key];
      values[key] = typeof v === 'number' ? v : null;
    }
    return { model: m.model, values, counts };
  });
  for (const [key, label, higherIsBetter] of GENERATION) {
    if (rows.some(r => r.values[key] !== null)) {
      columns.push({ key, metric: 'generation', label, higherIsBetter, top: null });
    }
  }
  const best: Record<string, string[]> = {};
  for (const c of columns) {
    const scored = rows.filter(r => typeof r.values[c.key] === 'number');
    if (scored.length < 2) {
      best[c.key] = [];
      continue;
    }
    const pick = c.higherIsBetter ? Math.max : Math.min;
    const top = pick(...scored.map(r => r.values[c.key] as number));
    const winners = scored.filter(r => r.values[c.key] === top).map(r => r.model);
    best[c.key] = winners.length < scored.length ? winners : []; // all equal: nobody is best
  }
  return { columns, rows, best };
}

/** Bar lengths in percent for one score key: against the score's fixed top when it has one, scores
 * in [0, 1] against 1, others against the largest. */
export function barPercents(values: Array<number | null>, fixedTop: number | null = null): number[] {
  const finite = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const top =
    fixedTop ?? (finite.length && finite.every(v => v >= 0 && v <= 1) ? 1 : Math.max(0, ...finite.map(Math.abs)));
  return values.map(v => (typeof v === 'number' && top > 0 ? Math.round((Math.abs(v) / top) * 1000) / 10 : 0));
}

export function formatScore(value: number | null | undefined): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return '—';
  }
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(3);
}

/** "about 12 s left", "about 3 min left"; nothing when unknown. */
export function etaText(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 90) {
    return `about ${Math.max(1, Math.round(seconds))} s left`;
  }
  return `about ${Math.round(seconds / 60)} min left`;
}

/** What `model_parameters.model` must be for the checked models: absent for every model (one
 * comparison), the name for one; a subset in between the platform cannot run as one evaluation. */
export function modelChoice(all: string[], checked: string[]): { model?: string; error?: string } {
  if (!checked.length) {
    return { error: 'check at least one model' };
  }
  if (checked.length === all.length) {
    return {};
  }
  if (checked.length === 1) {
    return { model: checked[0] };
  }
  return { error: 'check every model (one comparison of all of them) or just one' };
}

/** A report folder name from an evaluation name and the time. */
export function reportFolder(base: string, name: string, now: Date = new Date()): string {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'evaluation';
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${base.replace(/\/+$/, '')}/${slug}-${stamp}`;
}
