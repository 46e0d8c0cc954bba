/** Blind vote in Chat & compare: two of the deployment's models answer one prompt as A and B (the server
 * picks the pair compared least and a seeded order), the user says which is better, a tie or both bad,
 * and only then are the models named. */
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';

import { clear, errorBox, h } from './dom';
import { describe, postJSON, requestAPI } from './request';
import type { BlindPair, Vote } from './schema';
import { showLeaderboard } from './leaderboard';

const VERDICTS = [
  ['a', 'A is better'],
  ['b', 'B is better'],
  ['tie', 'Tie'],
  ['both_bad', 'Both bad']
] as const;

export class BlindVote {
  readonly node: HTMLElement;
  private readonly rounds = h('div', { className: 'aqua-blind-rounds', role: 'log', 'aria-label': 'Blind votes' });

  constructor(
    private readonly deploymentId: string,
    private readonly platform: string,
    private readonly rendermime: IRenderMimeRegistry,
    title: () => string
  ) {
    this.node = h(
      'div',
      { className: 'aqua-blind', hidden: true },
      h(
        'p',
        { className: 'aqua-muted' },
        'Blind vote: two models answer as A and B; their names are shown after your vote. ',
        h(
          'button',
          {
            className: 'jp-mod-styled aqua-small',
            onclick: () => void showLeaderboard(this.deploymentId, title(), this.platform)
          },
          'Leaderboard'
        )
      ),
      this.rounds
    );
  }

  /** One prompt to a blind pair: the answers come whole (a streamed pair would tell the models apart by speed). */
  async ask(prompt: string, sampling: Record<string, number>, signal: AbortSignal): Promise<void> {
    const round = h('section', { className: 'aqua-blind-round', 'data-state': 'asking' });
    round.append(h('div', { className: 'aqua-turn aqua-user' }, prompt), h('div', { className: 'aqua-muted' }, 'A and B are answering…'));
    this.rounds.append(round);
    round.scrollIntoView({ block: 'end' });
    let pair: BlindPair;
    try {
      pair = await requestAPI<BlindPair>(
        `deployments/${encodeURIComponent(this.deploymentId)}/blind-pairs`,
        { method: 'POST', body: JSON.stringify({ prompt, ...sampling }), signal },
        { platform: this.platform }
      );
    } catch (error) {
      round.lastElementChild!.replaceWith(errorBox(signal.aborted ? 'stopped' : describe(error)));
      round.dataset.state = 'error';
      return;
    }
    const headers = new Map<string, HTMLElement>();
    const sides = await Promise.all(
      pair.answers.map(async answer => {
        const header = h('header', {}, h('strong', { className: 'aqua-blind-label' }, answer.label));
        headers.set(answer.label, header);
        const body = h('div', { className: 'aqua-answer-text' });
        const renderer = this.rendermime.createRenderer('text/markdown');
        await renderer.renderModel(new MimeModel({ data: { 'text/markdown': answer.text || '(empty answer)' }, trusted: false }));
        body.append(renderer.node);
        return h('section', { className: 'aqua-column', 'data-label': answer.label }, header, h('div', { className: 'aqua-transcript' }, body));
      })
    );
    const message = h('div', { className: 'aqua-card-message', 'aria-live': 'polite' });
    const buttons = VERDICTS.map(([verdict, label]) =>
      h(
        'button',
        {
          className: 'jp-mod-styled aqua-small',
          'data-verdict': verdict,
          onclick: () => void this.vote(pair, verdict, buttons, headers, round, message)
        },
        label
      )
    );
    round.lastElementChild!.replaceWith(
      h('div', { className: 'aqua-columns aqua-blind-pair' }, sides),
      h('div', { className: 'aqua-blind-verdicts', role: 'group', 'aria-label': 'Your vote' }, buttons),
      message
    );
    round.dataset.state = 'voting';
    round.dataset.pairId = pair.id;
  }

  private async vote(
    pair: BlindPair,
    verdict: string,
    buttons: HTMLButtonElement[],
    headers: Map<string, HTMLElement>,
    round: HTMLElement,
    message: HTMLElement
  ): Promise<void> {
    buttons.forEach(b => (b.disabled = true));
    clear(message, 'Voting…');
    try {
      const vote = await postJSON<Vote>(
        `deployments/${encodeURIComponent(this.deploymentId)}/votes`,
        { pair_id: pair.id, verdict },
        { platform: this.platform }
      );
      for (const [label, model] of [
        ['A', vote.model_a],
        ['B', vote.model_b]
      ]) {
        headers.get(label)!.append(' ', h('span', { className: 'aqua-model-name aqua-revealed', title: model }, model));
      }
      buttons.forEach(b => b.classList.toggle('aqua-chosen', b.dataset.verdict === verdict));
      const said = VERDICTS.find(([v]) => v === verdict)![1];
      clear(message, `You voted: ${said}. A was ${vote.model_a}, B was ${vote.model_b}.`);
      round.dataset.state = 'voted';
      round.dataset.verdict = verdict;
    } catch (error) {
      buttons.forEach(b => (b.disabled = false));
      clear(message, errorBox(describe(error)));
    }
  }
}
