import { describe, expect, it } from 'vitest';

import { ApiError, describe as describeError, parseError } from '../src/request';

describe('parseError', () => {
  it('keeps the server message and every field path with its fix', () => {
    const body = JSON.stringify({
      message: 'invalid deployment request',
      errors: [{ field: 'models[0].gpu_count', message: 'needs 64 GPUs, the shape has 2', fix: 'use 1 or 2' }]
    });
    const error = parseError(422, body);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.message).toBe('invalid deployment request');
    expect(error.problemFor('models[0].gpu_count')?.fix).toBe('use 1 or 2');
    expect(error.problemFor('models[1].gpu_count')).toBeUndefined();
    expect(error.retryable).toBe(false);
    expect(describeError(error)).toContain('models[0].gpu_count: needs 64 GPUs, the shape has 2 (use 1 or 2)');
  });

  it('reports a non-JSON answer (a proxy page) by status and a short snippet', () => {
    const error = parseError(502, '<html>Bad gateway</html>', 'Bad Gateway');
    expect(error.message).toBe('502 Bad Gateway: <html>Bad gateway</html>');
    expect(error.retryable).toBe(true);
    expect(error.problems).toEqual([]);
  });

  it('keeps the request id of a server failure', () => {
    const error = parseError(500, JSON.stringify({ message: 'internal error', request_id: 'abc' }));
    expect(error.requestId).toBe('abc');
    expect(error.retryable).toBe(true);
  });

  it('treats no answer at all as retryable', () => {
    expect(new ApiError('the Jupyter server did not answer', 0).retryable).toBe(true);
  });
});
