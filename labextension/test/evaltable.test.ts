import { describe, expect, it } from 'vitest';

import { barPercents, comparison, etaText, formatScore, modelChoice, reportFolder } from '../src/evaltable';
import type { EvaluationMetrics } from '../src/schema';

const stats = (median: number | null, count = 36) => ({ count, median, mean: median, sd: 0, min: median, max: median });

const metrics: EvaluationMetrics = {
  id: 'e',
  name: 'n',
  state: 'SUCCEEDED',
  models: [
    {
      model: 'a',
      generation: { tokens_per_s_mean: 9.5, latency_ms_p50: null },
      metric_summary_result: [],
      metrics: [
        { name: 'rouge', label: 'ROUGE', keys: ['rouge1', 'rougeL'], summary: { rouge1: stats(0.5), rougeL: stats(0.4) } },
        { name: 'perplexity_score', label: 'Perplexity', keys: ['perplexity_score'], higher_is_better: false, summary: { perplexity_score: stats(12) } }
      ]
    },
    {
      model: 'b',
      generation: { tokens_per_s_mean: 4.2 },
      metric_summary_result: [],
      metrics: [
        { name: 'rouge', label: 'ROUGE', keys: ['rouge1', 'rougeL'], summary: { rouge1: stats(0.7), rougeL: stats(0.4) } },
        { name: 'perplexity_score', label: 'Perplexity', keys: ['perplexity_score'], higher_is_better: false, summary: { perplexity_score: stats(null, 0) } }
      ]
    }
  ]
};

describe('comparison', () => {
  it('has one row per model and one column per score key, in the metrics order', () => {
    const t = comparison(metrics);
    expect(t.rows.map(r => r.model)).toEqual(['a', 'b']);
    expect(t.columns.map(c => c.key)).toEqual(['rouge1', 'rougeL', 'perplexity_score', 'tokens_per_s_mean']);
    expect(t.columns[2].label).toBe('Perplexity'); // a one-key metric is named by its label
    expect(t.rows[1].values.rouge1).toBe(0.7);
  });

  it('marks the best median by the direction of the metric, ties for every model, none with one score', () => {
    const t = comparison(metrics);
    expect(t.best.rouge1).toEqual(['b']);
    expect(t.best.rougeL).toEqual([]); // a tie of every model: nobody is best
    expect(t.best.tokens_per_s_mean).toEqual(['a']);
    expect(t.best.perplexity_score).toEqual([]); // b has no score: nothing to compare
  });
});

describe('bars and words', () => {
  it('draws scores in [0, 1] against 1 and others against the largest', () => {
    expect(barPercents([0.5, 0.25, null])).toEqual([50, 25, 0]);
    expect(barPercents([10, 40])).toEqual([25, 100]);
    expect(barPercents([null, null])).toEqual([0, 0]);
    expect(barPercents([20, 40], 100)).toEqual([20, 40]); // BLEU on its 0–100 scale
  });

  it('formats scores and ETAs', () => {
    expect(formatScore(0.12345)).toBe('0.123');
    expect(formatScore(1684.4)).toBe('1684');
    expect(formatScore(null)).toBe('—');
    expect(etaText(0.2)).toBe('about 1 s left');
    expect(etaText(300)).toBe('about 5 min left');
    expect(etaText(null)).toBe('');
  });
});

describe('modelChoice', () => {
  it('sends no model for all, the name for one, and refuses a subset in between', () => {
    expect(modelChoice(['a', 'b', 'c'], ['a', 'b', 'c'])).toEqual({});
    expect(modelChoice(['a', 'b', 'c'], ['b'])).toEqual({ model: 'b' });
    expect(modelChoice(['a', 'b', 'c'], ['a', 'b']).error).toMatch(/every model/);
    expect(modelChoice(['a'], []).error).toMatch(/at least one/);
  });

  it('names a report folder after the evaluation and the time', () => {
    const at = new Date('2026-12-01T23:04:05Z');
    expect(reportFolder('/data/reports/', 'My <b>eval</b>', at)).toBe('/data/reports/my-b-eval-b-20261201-230405');
  });
});
