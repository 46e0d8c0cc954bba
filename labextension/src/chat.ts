/** The Chat & compare tab of one deployment: a conversation per served model, or one prompt to all. */
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { BlindVote } from './blind';
import { AquaContext } from './context';
import { clear, errorBox, h } from './dom';
import { describe, requestAPI, requestStream } from './request';
import type { ChatMessage, Deployment } from './schema';
import { chunkText, readEvents, SseEvent } from './sse';

interface Column {
  model: string;
  history: ChatMessage[];
  transcript: HTMLElement;
  stats: HTMLElement;
}

/** One answer being streamed: text is appended to the DOM once per animation frame, not per token. */
class Answer {
  readonly node: HTMLElement;
  private readonly body: HTMLElement;
  private pending = '';
  private shown = 0;
  private piece: Text | null = null;
  private frame: number | null = null;
  content = '';
  tokens = 0;
  readonly started = performance.now();
  firstAt: number | null = null;

  constructor(parent: HTMLElement) {
    this.body = h('div', { className: 'aqua-answer-text' });
    this.node = h('div', { className: 'aqua-turn aqua-assistant', 'data-streaming': 'true' }, this.body);
    parent.append(this.node);
  }

  private wakeNote: HTMLElement | null = null;

  /** The model is asleep and loads its weights first: say so until its first token comes. */
  loading(message: string): void {
    if (this.firstAt !== null) {
      return;
    }
    this.wakeNote ??= this.node.insertBefore(h('div', { className: 'aqua-muted aqua-loading' }), this.body);
    this.wakeNote.textContent = message;
  }

  add(text: string): void {
    if (!text) {
      return;
    }
    this.wakeNote?.remove();
    this.wakeNote = null;
    this.firstAt ??= performance.now();
    this.tokens += 1;
    this.content += text;
    this.pending += text;
    this.frame ??= requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    this.frame = null;
    this.appendText(this.pending);
    this.shown += this.pending.length;
    this.pending = '';
    this.node.dataset.chars = String(this.shown);
    const scroller = this.node.parentElement;
    if (scroller && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80) {
      scroller.scrollTop = scroller.scrollHeight; // follow the answer unless the user scrolled up
    }
  }

  /**
   * Text goes into blocks of bounded size, so a frame lays out the last block only, however long
   * the answer grows: a block ends at a line break past 1000 characters (invisible), or at a space
   * past 4000 (the line ends early there until the answer is rendered as markdown at its end).
   */
  private appendText(text: string): void {
    while (text) {
      if (!this.piece) {
        this.piece = document.createTextNode('');
        this.body.append(h('div', { className: 'aqua-piece' }, this.piece));
      }
      const size = this.piece.length;
      const cut = size > 4000 ? text.search(/\s/) : size > 1000 ? text.indexOf('\n') : -1;
      if (cut < 0) {
        this.piece.appendData(text);
        return;
      }
      this.piece.appendData(text.slice(0, cut + 1));
      text = text.slice(cut + 1);
      this.piece = null;
    }
  }

  error(message: string): void {
    this.node.append(errorBox(message));
  }

  /** The stream ended: show the whole answer as markdown through JupyterLab's sanitising renderer. */
  async finish(rendermime: IRenderMimeRegistry, note: string): Promise<void> {
    if (this.frame !== null) {
      cancelAnimationFrame(this.frame);
      this.flush();
    }
    this.node.dataset.streaming = 'false';
    this.wakeNote?.remove(); // a wake that ended without a token (an error, Stop) is over too
    if (note) {
      this.node.append(h('div', { className: 'aqua-muted aqua-answer-note' }, note));
    }
    if (!this.content) {
      return;
    }
    const renderer = rendermime.createRenderer('text/markdown');
    await renderer.renderModel(new MimeModel({ data: { 'text/markdown': this.content }, trusted: false }));
    this.body.replaceChildren(renderer.node);
  }

  ttftMs(): number | null {
    return this.firstAt === null ? null : Math.round(this.firstAt - this.started);
  }

  tokensPerSecond(): number | null {
    const seconds = this.firstAt === null ? 0 : (performance.now() - this.firstAt) / 1000;
    return this.tokens > 1 && seconds > 0 ? Math.round(((this.tokens - 1) / seconds) * 10) / 10 : null;
  }
}

export class ChatView extends Widget {
  private deployment: Deployment | null = null;
  private columns: Column[] = [];
  private controllers = new Set<AbortController>();
  private readonly modeCompare: HTMLInputElement;
  private readonly modeBlind = h('input', { type: 'checkbox', 'aria-label': 'Blind vote: two hidden models, names after the vote' });
  private readonly blind: BlindVote;
  private readonly target = h('select', { 'aria-label': 'Send to model' });
  private readonly system = h('textarea', { rows: 1, placeholder: 'System prompt (optional)', 'aria-label': 'System prompt' });
  private readonly temperature: HTMLInputElement;
  private readonly topP: HTMLInputElement;
  private readonly maxTokens: HTMLInputElement;
  private readonly input = h('textarea', {
    rows: 2,
    className: 'aqua-prompt',
    placeholder: 'Message (Enter sends, Shift+Enter new line, Escape stops)',
    'aria-label': 'Message'
  });
  private readonly sendButton = h('button', { className: 'jp-mod-styled jp-mod-accept', 'aria-label': 'Send' }, 'Send');
  private readonly stopButton = h('button', { className: 'jp-mod-styled jp-mod-warn', disabled: true, 'aria-label': 'Stop' }, 'Stop');
  private readonly columnsNode = h('div', { className: 'aqua-columns' });
  private readonly status = h('div', { className: 'aqua-status', 'aria-live': 'polite' });

  constructor(
    ctx: AquaContext,
    private readonly rendermime: IRenderMimeRegistry,
    readonly deploymentId: string,
    readonly platform: string,
    compare: boolean
  ) {
    super();
    this.addClass('aqua-chat-view');
    this.id = `aqua-lab-chat-${platform}-${deploymentId}`.replace(/[^\w-]/g, '_');
    this.title.label = `Chat: ${deploymentId}`;
    this.title.closable = true;
    const s = ctx.preferences.sampling;
    const num = (label: string, value: number, attrs: Record<string, string | number>) =>
      h('input', { type: 'number', value, 'aria-label': label, className: 'aqua-num', ...attrs });
    this.temperature = num('Temperature', s.temperature, { min: 0, max: 2, step: 0.1 });
    this.topP = num('Top p', s.top_p, { min: 0.01, max: 1, step: 0.05 });
    this.maxTokens = num('Max tokens', s.max_tokens, { min: 1, step: 1 });
    this.modeCompare = h('input', { type: 'checkbox', checked: compare, 'aria-label': 'Compare: send to every model' });
    this.modeCompare.addEventListener('change', () => this.drawMode());
    this.modeBlind.addEventListener('change', () => this.drawMode());
    this.blind = new BlindVote(deploymentId, platform, rendermime, () => this.deployment?.display_name ?? deploymentId);
    this.sendButton.addEventListener('click', () => void this.send());
    this.stopButton.addEventListener('click', () => this.stop());
    this.input.addEventListener('keydown', e => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        void this.send();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        this.stop();
      }
    });
    this.node.addEventListener('keydown', e => {
      if (e.key === 'Escape' && this.controllers.size) {
        this.stop();
      }
    });
    this.node.append(
      h(
        'div',
        { className: 'aqua-chat-toolbar' },
        h('label', { className: 'aqua-field' }, this.modeCompare, ' Compare all models'),
        h('label', { className: 'aqua-field' }, this.modeBlind, ' Blind vote'),
        h('label', { className: 'aqua-field aqua-target' }, 'Model ', this.target),
        h('label', { className: 'aqua-field' }, 'temperature ', this.temperature),
        h('label', { className: 'aqua-field' }, 'top_p ', this.topP),
        h('label', { className: 'aqua-field' }, 'max_tokens ', this.maxTokens),
        h('button', { className: 'jp-mod-styled', onclick: () => this.newChat(), 'aria-label': 'New chat' }, 'New chat')
      ),
      this.system,
      this.status,
      this.columnsNode,
      this.blind.node,
      h('div', { className: 'aqua-chat-input' }, this.input, this.sendButton, this.stopButton)
    );
    void this.load();
  }

  get compare(): boolean {
    return this.modeCompare.checked;
  }

  protected onActivateRequest(_: Message): void {
    this.input.focus();
  }

  protected onCloseRequest(msg: Message): void {
    this.stop();
    super.onCloseRequest(msg);
  }

  private async load(): Promise<void> {
    try {
      this.deployment = await requestAPI<Deployment>(`deployments/${encodeURIComponent(this.deploymentId)}`, {}, {
        platform: this.platform
      });
    } catch (error) {
      clear(this.status, errorBox(describe(error)), h('button', { className: 'jp-mod-styled', onclick: () => void this.load() }, 'Retry'));
      return;
    }
    const d = this.deployment;
    this.title.label = `Chat: ${d.display_name}`;
    this.title.caption = `${d.display_name} (${d.id}) on ${d.instance_shape}`;
    clear(this.status, d.state === 'ACTIVE' ? null : errorBox(`The deployment is ${d.state}: activate it from the sidebar to chat.`));
    clear(this.target, d.models.map(m => h('option', { value: m.model_name }, m.model_name)));
    this.columns = d.models.map(m => {
      const transcript = h('div', { className: 'aqua-transcript', role: 'log', 'aria-label': `Conversation with ${m.model_name}` });
      const stats = h('span', { className: 'aqua-muted aqua-stats' });
      return { model: m.model_name, history: [], transcript, stats };
    });
    clear(
      this.columnsNode,
      this.columns.map(c =>
        h(
          'section',
          { className: 'aqua-column', 'data-model': c.model },
          h('header', {}, h('strong', { className: 'aqua-model-name', title: c.model }, c.model), ' ', c.stats),
          c.transcript
        )
      )
    );
    this.modeBlind.disabled = d.models.length < 2;
    this.node.dataset.state = 'ready';
    this.drawMode();
  }

  private drawMode(): void {
    const blind = this.modeBlind.checked;
    this.node.dataset.mode = blind ? 'blind' : this.compare ? 'compare' : 'chat';
    this.target.disabled = this.compare || blind;
    this.columnsNode.hidden = blind;
    this.blind.node.hidden = !blind;
  }

  private sampling(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, input] of [
      ['temperature', this.temperature],
      ['top_p', this.topP],
      ['max_tokens', this.maxTokens]
    ] as const) {
      if (input.value !== '') {
        out[key] = Number(input.value);
      }
    }
    return out;
  }

  private prefix(): ChatMessage[] {
    const system = this.system.value.trim();
    return system ? [{ role: 'system', content: system }] : [];
  }

  private newChat(): void {
    this.stop();
    for (const c of this.columns) {
      c.history = [];
      clear(c.transcript);
      clear(c.stats);
    }
    this.input.focus();
  }

  private stop(): void {
    for (const controller of this.controllers) {
      controller.abort(); // closes the request: the server cancels the model's generation
    }
  }

  private busy(on: boolean): void {
    this.stopButton.disabled = !on;
    this.sendButton.disabled = on;
    this.node.dataset.busy = String(on);
  }

  private async send(): Promise<void> {
    const text = this.input.value.trim();
    if (!text || !this.deployment || this.controllers.size) {
      return;
    }
    this.input.value = '';
    if (this.modeBlind.checked) {
      await this.sendBlind(text);
      return;
    }
    const columns = this.compare ? this.columns : this.columns.filter(c => c.model === this.target.value);
    const answers = new Map<string, Answer>();
    for (const c of columns) {
      c.transcript.append(h('div', { className: 'aqua-turn aqua-user' }, text));
      answers.set(c.model, new Answer(c.transcript));
    }
    const controller = new AbortController();
    this.controllers.add(controller);
    this.busy(true);
    const notes = new Map<string, string>();
    try {
      if (this.compare) {
        await this.streamCompare(text, answers, notes, controller.signal);
      } else {
        await this.streamChat(columns[0], text, answers.get(columns[0].model)!, controller.signal);
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        answers.forEach(a => a.error(describe(error)));
      }
    } finally {
      this.controllers.delete(controller);
      this.busy(false);
    }
    for (const c of columns) {
      const answer = answers.get(c.model)!;
      const stopped = controller.signal.aborted ? 'stopped' : '';
      const ttft = answer.ttftMs();
      const rate = answer.tokensPerSecond();
      const stats =
        notes.get(c.model) ??
        [ttft !== null ? `TTFT ${ttft} ms` : '', rate !== null ? `${rate} tok/s` : ''].filter(Boolean).join(' · ');
      clear(c.stats, stats);
      c.history.push({ role: 'user', content: text }, { role: 'assistant', content: answer.content });
      await answer.finish(this.rendermime, [stopped, stats].filter(Boolean).join(' · '));
    }
  }

  private async sendBlind(text: string): Promise<void> {
    const controller = new AbortController();
    this.controllers.add(controller);
    this.busy(true);
    try {
      await this.blind.ask(text, this.sampling(), controller.signal);
    } finally {
      this.controllers.delete(controller);
      this.busy(false);
    }
  }

  private async streamChat(column: Column, text: string, answer: Answer, signal: AbortSignal): Promise<void> {
    const body = {
      model: column.model,
      messages: [...this.prefix(), ...column.history, { role: 'user', content: text }],
      stream: true,
      ...this.sampling()
    };
    const response = await requestStream(`deployments/${encodeURIComponent(this.deploymentId)}/chat`, body, signal, {
      platform: this.platform
    });
    await readEvents(response, event => {
      if (event.data === '[DONE]') {
        return;
      }
      if (event.event === 'error') {
        answer.error(messageText(event));
        return;
      }
      if (event.event === 'loading') {
        answer.loading(messageText(event)); // "waking <model>… loading its weights (N s)"
        return;
      }
      answer.add(chunkText(parse(event.data)));
    }).catch(error => {
      if (!signal.aborted) {
        throw error;
      }
    });
  }

  private async streamCompare(
    text: string,
    answers: Map<string, Answer>,
    notes: Map<string, string>,
    signal: AbortSignal
  ): Promise<void> {
    const body = {
      messages: [...this.prefix(), { role: 'user', content: text }],
      models: [...answers.keys()],
      ...this.sampling()
    };
    const response = await requestStream(`deployments/${encodeURIComponent(this.deploymentId)}/compare`, body, signal, {
      platform: this.platform
    });
    await readEvents(response, event => {
      if (event.data === '[DONE]') {
        return;
      }
      const data = parse(event.data) as Record<string, any> | null;
      const answer = data?.model ? answers.get(data.model) : undefined;
      if (event.event === 'error') {
        // one model failing leaves the others streaming; an error without a model ends them all
        (answer ? [answer] : [...answers.values()]).forEach(a => a.error(messageText(event)));
      } else if (event.event === 'loading') {
        answer?.loading(messageText(event));
      } else if (event.event === 'done' && answer) {
        const parts = [
          data!.ttft_ms != null ? `TTFT ${data!.ttft_ms} ms` : '',
          data!.tokens_per_s != null ? `${data!.tokens_per_s} tok/s` : '',
          data!.tokens != null ? `${data!.tokens} tokens` : ''
        ];
        notes.set(data!.model, parts.filter(Boolean).join(' · '));
      } else if (answer) {
        answer.add(chunkText(data!.chunk));
      }
    }).catch(error => {
      if (!signal.aborted) {
        throw error;
      }
    });
  }
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

function messageText(event: SseEvent): string {
  const data = parse(event.data) as { message?: string } | null;
  return data?.message ?? event.data;
}

export { Answer };
