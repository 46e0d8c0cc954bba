import { describe, expect, it } from 'vitest';

import { chunkText, SseParser } from '../src/sse';

describe('SseParser', () => {
  it('splits events on blank lines and names them', () => {
    const p = new SseParser();
    const events = p.feed('data: {"a":1}\n\nevent: done\ndata: {"model":"m"}\n\ndata: [DONE]\n\n');
    expect(events).toEqual([
      { event: 'message', data: '{"a":1}' },
      { event: 'done', data: '{"model":"m"}' },
      { event: 'message', data: '[DONE]' }
    ]);
  });

  it('joins an event cut anywhere, including inside \\r\\n', () => {
    const text = 'event: error\r\ndata: {"message":"boom"}\r\n\r\ndata: x\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      const events = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut)), ...p.end()];
      expect(events).toEqual([
        { event: 'error', data: '{"message":"boom"}' },
        { event: 'message', data: 'x' }
      ]);
    }
  });

  it('joins multi-line data, ignores comments, keeps an unterminated last event', () => {
    const p = new SseParser();
    expect(p.feed(': keep-alive\ndata: one\ndata:two\n\n')).toEqual([{ event: 'message', data: 'one\ntwo' }]);
    expect(p.feed('data: tail')).toEqual([]);
    expect(p.end()).toEqual([{ event: 'message', data: 'tail' }]);
  });

  it('forgets an event name that had no data', () => {
    const p = new SseParser();
    expect(p.feed('event: ping\n\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x' }]);
  });
});

describe('chunkText', () => {
  it('reads chat deltas and completion text, and nothing from other chunks', () => {
    expect(chunkText({ choices: [{ delta: { content: 'Hi' } }] })).toBe('Hi');
    expect(chunkText({ choices: [{ text: ' there' }] })).toBe(' there');
    expect(chunkText({ choices: [{ delta: { role: 'assistant' } }] })).toBe('');
    expect(chunkText({ usage: {} })).toBe('');
    expect(chunkText(null)).toBe('');
  });
});
