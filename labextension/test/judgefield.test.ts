import { describe, expect, it } from 'vitest';

import { judgeFieldOf, utf8Bytes } from '../src/evalform';

describe('judgeFieldOf', () => {
  it('puts a judge problem under the field the user fills', () => {
    expect(judgeFieldOf('metrics[1].args.rubric')).toBe('rubric');
    expect(judgeFieldOf('metrics[0].args.judge.url')).toBe('judge.url');
    expect(judgeFieldOf('metrics[2].args.judge.api_key_env')).toBe('judge.api_key_env');
    expect(judgeFieldOf('metrics[0].args.judge.model')).toBe('judge');
    expect(judgeFieldOf('metrics[0].args.judge')).toBe('judge');
  });

  it('leaves other fields to the form', () => {
    expect(judgeFieldOf('metrics[0].name')).toBeNull();
    expect(judgeFieldOf('metrics[0].args.judgement')).toBeNull();
    expect(judgeFieldOf('dataset_path')).toBeNull();
  });
});

describe('utf8Bytes', () => {
  it('counts the bytes the 8 KiB limit counts, not characters', () => {
    expect(utf8Bytes('abc')).toBe(3);
    expect(utf8Bytes('é')).toBe(2);
    expect(utf8Bytes('✓')).toBe(3);
  });
});
