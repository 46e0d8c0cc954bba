/**
 * A Server-Sent Events parser for a stream read with fetch + a reader (EventSource cannot POST).
 * Feed it decoded text in any pieces; it returns the complete events so far.
 */
export interface SseEvent {
  event: string; // "message" when the stream named none
  data: string;
}

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];

  feed(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      // a lone \r at the end may be the first half of \r\n: wait for the next piece
      if (this.buffer[newline] === '\r' && newline === this.buffer.length - 1) {
        break;
      }
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      const done = this.line(line);
      if (done) {
        out.push(done);
      }
    }
    return out;
  }

  /** The stream ended: an event not yet closed by a blank line still counts. */
  end(): SseEvent[] {
    const rest = this.buffer ? this.feed('\n') : [];
    const last = this.line('');
    return last ? [...rest, last] : rest;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (!this.data.length) {
        this.event = '';
        return null;
      }
      const done = { event: this.event || 'message', data: this.data.join('\n') };
      this.event = '';
      this.data = [];
      return done;
    }
    if (line.startsWith(':')) {
      return null; // comment / keep-alive
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this.event = value;
    } else if (field === 'data') {
      this.data.push(value);
    }
    return null;
  }
}

/** Read an SSE response body to the end, calling `onEvent` per event; resolves when it ends. */
export async function readEvents(response: Response, onEvent: (event: SseEvent) => void): Promise<void> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      break;
    }
    parser.feed(decoder.decode(value, { stream: true })).forEach(onEvent);
  }
  parser.feed(decoder.decode()).forEach(onEvent);
  parser.end().forEach(onEvent);
}

/** The text a chat-completion or completion chunk adds (OpenAI stream format). */
export function chunkText(chunk: unknown): string {
  const choice = (chunk as { choices?: Array<Record<string, any>> })?.choices?.[0];
  if (!choice) {
    return '';
  }
  return choice.delta?.content ?? choice.text ?? '';
}
