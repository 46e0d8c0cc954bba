/** The left-area panel: platform switch, the platform's deployments with live state, actions. */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AquaContext, COMMANDS } from './context';
import { carryUserState, clear, errorBox, h } from './dom';
import { aquaIcon } from './icon';
import { ApiError, describe, postJSON, requestAPI } from './request';
import { showMetrics } from './metrics';
import { ociSettingsForm } from './ocisettings';
import { scalingForm } from './scaling';
import { showLeaderboard } from './leaderboard';
import { showVersions } from './versions';
import type { DataList_Deployment_, Deployment, Logs } from './schema';
import { noKeyReason, showUsage } from './usage';
import { memoryBar, residencyNote } from './residency';

const BUSY = new Set(['CREATING', 'UPDATING', 'DELETING']);

export class SidebarPanel extends Widget {
  private platform = '';
  private timer: number | null = null;
  private failures = 0;
  private asked = 0; // the newest list request: an older answer landing after it is not drawn
  private renders = 0; // list redraws, on the list as data-render (a test waits for one to pass)
  private lastJson = '';
  private lastStates = ''; // ids and states: a change means what is free changed, and plans are asked again
  private readonly select = h('select', { className: 'aqua-platform', 'aria-label': 'Platform' });
  private readonly status = h('div', { className: 'aqua-status', 'aria-live': 'polite' });
  private readonly list = h('div', { className: 'aqua-deployments', role: 'list', 'aria-label': 'Deployments', tabindex: -1 });
  private readonly oci = ociSettingsForm(() => this.switchTo(this.platform));
  private readonly ociButton = h(
    'button',
    { className: 'jp-mod-styled', hidden: true, title: 'Choose the OCI config file, profile, region, compartment and project', onclick: () => this.oci.open() },
    'OCI settings'
  );

  constructor(private readonly ctx: AquaContext) {
    super();
    this.id = 'aqua-lab-sidebar';
    this.addClass('aqua-sidebar');
    this.title.icon = aquaIcon;
    this.title.caption = 'AQUA Lab';
    this.node.dataset.state = 'loading';
    this.select.addEventListener('change', () => this.switchTo(this.select.value));
    const header = h(
      'div',
      { className: 'aqua-sidebar-header' },
      h('h2', { className: 'aqua-title' }, 'AQUA Lab'),
      h('label', { className: 'aqua-field' }, 'Platform ', this.select, ' ', this.ociButton),
      this.oci.node,
      h(
        'div',
        { className: 'aqua-toolbar' },
        h(
          'button',
          {
            className: 'jp-mod-styled jp-mod-accept',
            onclick: () => void this.ctx.execute(COMMANDS.plan, { platform: this.platform })
          },
          'New deployment'
        ),
        h(
          'button',
          { className: 'jp-mod-styled', onclick: () => void this.ctx.execute(COMMANDS.plan, { platform: this.platform }) },
          'Plan'
        ),
        h(
          'button',
          {
            className: 'jp-mod-styled',
            onclick: () => void this.ctx.execute(COMMANDS.evaluations, { platform: this.platform })
          },
          'Evaluations'
        ),
        h('button', { className: 'jp-mod-styled', 'aria-label': 'Refresh deployments', onclick: () => this.refresh() }, '⟳')
      )
    );
    this.node.append(header, this.status, this.list);
  }

  get currentPlatform(): string {
    return this.platform;
  }

  protected onAfterShow(_: Message): void {
    performance.mark('aqua-sidebar-show');
    void this.start();
  }

  protected onBeforeHide(_: Message): void {
    this.stop();
  }

  protected onBeforeDetach(_: Message): void {
    this.stop();
  }

  private async start(): Promise<void> {
    if (!this.platform) {
      try {
        const platforms = await this.ctx.platforms();
        this.platform = await this.ctx.defaultPlatform();
        this.ociButton.hidden = this.platform !== 'oci';
        clear(
          this.select,
          platforms.map(p =>
            h('option', { value: p.name, title: p.description, selected: p.name === this.platform }, p.name)
          )
        );
      } catch (error) {
        this.fail(error);
        return;
      }
    }
    this.refresh();
  }

  private stop(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private switchTo(platform: string): void {
    this.platform = platform;
    this.ociButton.hidden = platform !== 'oci';
    this.lastJson = '';
    this.lastStates = '';
    clear(this.list);
    this.refresh();
  }

  /** Load now, then again after the poll interval while the panel is visible. */
  refresh(): void {
    this.stop();
    if (!this.platform) {
      void this.start();
      return;
    }
    const platform = this.platform;
    const asked = ++this.asked;
    this.node.dataset.state = this.lastJson ? this.node.dataset.state : 'loading';
    requestAPI<DataList_Deployment_>('deployments', {}, { platform })
      .then(result => {
        if (platform !== this.platform || asked !== this.asked) {
          return;
        }
        this.failures = 0;
        this.render(result.data);
        this.schedule(result.data.some(d => BUSY.has(d.state)) ? 2 : this.ctx.preferences.pollInterval);
      })
      .catch(error => {
        if (platform === this.platform && asked === this.asked) {
          this.fail(error);
        }
      });
  }

  private schedule(seconds: number): void {
    if (this.isVisible) {
      this.timer = window.setTimeout(() => this.refresh(), seconds * 1000);
    }
  }

  /** The server is down or failed: say so and retry with a growing wait (not a spinner forever). */
  private fail(error: unknown): void {
    this.failures += 1;
    const wait = Math.min(60, this.ctx.preferences.pollInterval * 2 ** (this.failures - 1));
    this.node.dataset.state = 'error';
    const retryable = !(error instanceof ApiError) || error.retryable;
    clear(
      this.status,
      errorBox(`${describe(error)}${retryable ? ` — retrying in ${wait} s` : ''}`),
      h('button', { className: 'jp-mod-styled', onclick: () => this.refresh() }, 'Retry now'),
      // OCI not configured yet (or wrongly): the fix is one click away, not an environment variable
      this.platform === 'oci' ? h('button', { className: 'jp-mod-styled', onclick: () => this.oci.open() }, 'OCI settings') : null
    );
    if (retryable) {
      this.timer = null;
      this.schedule(wait);
    }
  }

  private render(deployments: Deployment[]): void {
    const json = JSON.stringify(deployments);
    this.node.dataset.state = 'ok';
    clear(this.status);
    if (json === this.lastJson) {
      return;
    }
    this.lastJson = json;
    const states = deployments.map(d => `${d.id}:${d.state}`).join(',');
    if (states !== this.lastStates) {
      this.lastStates = states;
      this.ctx.deploymentsChanged.emit(this.platform);
    }
    if (!deployments.length) {
      const hint =
        this.platform === 'bundled'
          ? 'The bundled platform plans but deploys nothing: choose Plan to see how models share a shape, or switch to local or oci to deploy.'
          : `No deployments on ${this.platform} yet. Choose “New deployment” to pick models and a shape.`;
      clear(this.list, h('p', { className: 'aqua-empty' }, hint));
    } else {
      // a card is drawn again when any of its numbers moves (a local model's memory, every poll): what
      // the user was doing in it (a Scale form open and half filled, a message, the focus) stays
      const before = new Map([...this.list.querySelectorAll<HTMLElement>('.aqua-card')].map(c => [c.dataset.id, c]));
      const cards = deployments.map(d => this.card(d));
      const focused = document.activeElement;
      clear(this.list, cards);
      for (const card of cards) {
        const old = before.get(card.dataset.id);
        if (old) {
          carryUserState(old, card, focused);
        }
      }
      if (focused instanceof HTMLElement && !focused.isConnected && document.activeElement === document.body) {
        this.list.focus(); // the focused card went away: not lost to the page's body
      }
    }
    this.list.dataset.render = String(++this.renders);
    performance.mark('aqua-sidebar-rendered');
  }

  private card(d: Deployment): HTMLElement {
    const platform = this.platform;
    const states = new Map((d.model_states ?? []).map(s => [s.model_name, s]));
    const message = h('div', { className: 'aqua-card-message', 'aria-live': 'polite', 'data-keep': 'message', 'data-keep-children': '' });
    // the card may have been drawn again while an action ran: its answer goes to the card shown now
    const shown = (): HTMLElement =>
      this.list.querySelector<HTMLElement>(`.aqua-card[data-id="${CSS.escape(d.id)}"] .aqua-card-message`) ?? message;
    const act = async (label: string, run: () => Promise<unknown>): Promise<void> => {
      clear(shown(), `${label}…`);
      try {
        await run();
        clear(shown());
      } catch (error) {
        clear(shown(), errorBox(describe(error)));
      }
      this.refresh();
    };
    const active = d.state === 'ACTIVE';
    const notActive = `It is ${d.state}: only an ACTIVE deployment answers`;
    // a disabled button says why in its tooltip (`why` is shown only while it is disabled)
    const button = (label: string, onclick: () => void, enabled = true, why = notActive) =>
      h(
        'button',
        {
          className: 'jp-mod-styled aqua-small',
          onclick,
          disabled: !enabled,
          title: enabled ? null : why,
          'aria-label': `${label} ${d.display_name}`
        },
        label
      );
    const noKey = noKeyReason(d);
    const scaling = scalingForm(d, platform, act);
    return h(
      'div',
      { className: 'aqua-card', role: 'listitem', 'data-id': d.id, 'data-state': d.state },
      h(
        'div',
        { className: 'aqua-card-head' },
        h('span', { className: 'aqua-card-name', title: d.display_name }, d.display_name),
        h('span', { className: `aqua-badge aqua-state-${d.state}` }, d.state)
      ),
      h(
        'div',
        { className: 'aqua-card-meta' },
        `${d.instance_shape} · ${d.models.length} model${d.models.length === 1 ? '' : 's'}`,
        d.state === 'CREATING' && d.progress !== undefined ? ` · ${d.progress}%` : ''
      ),
      h(
        'ul',
        { className: 'aqua-model-states' },
        d.models.map(m => {
          const s = states.get(m.model_name);
          return h(
            'li',
            { 'data-model': m.model_name },
            h('span', { className: 'aqua-model-name', title: m.model_id }, m.model_name),
            ' ',
            h('span', { className: `aqua-badge aqua-state-${s?.state ?? 'UNKNOWN'}` }, s?.state ?? '—'),
            s?.detail ? h('span', { className: 'aqua-detail' }, ` ${s.detail}`) : null,
            s ? residencyNote(s) : null,
            memoryBar(s?.memory, s?.state)
          );
        })
      ),
      d.lifecycle_details && d.state !== 'ACTIVE' ? h('div', { className: 'aqua-detail' }, d.lifecycle_details) : null,
      h(
        'div',
        { className: 'aqua-card-actions' },
        button('Chat', () => void this.ctx.execute(COMMANDS.chat, { deploymentId: d.id, platform }), active),
        button(
          'Compare',
          () => void this.ctx.execute(COMMANDS.chat, { deploymentId: d.id, platform, compare: true }),
          active && d.models.length > 1,
          active ? 'Compare needs two or more models' : notActive
        ),
        d.state === 'INACTIVE'
          ? button('Activate', () => void act('Activating', () => postJSON(`deployments/${d.id}/activate`, {}, { platform })))
          : button(
              'Deactivate',
              () => void act('Deactivating', () => postJSON(`deployments/${d.id}/deactivate`, {}, { platform })),
              active,
              `It is ${d.state}: only an ACTIVE deployment can be deactivated`
            ),
        button(
          'Evaluate',
          () => void this.ctx.execute(COMMANDS.evaluations, { platform, deploymentId: d.id }),
          active && platform !== 'bundled'
        ),
        button('Metrics', () => void showMetrics(d, platform)),
        button(
          'Leaderboard',
          () => void showLeaderboard(d.id, d.display_name, platform),
          d.models.length > 1,
          'A leaderboard ranks two or more models'
        ),
        button('Scale', () => scaling.toggle(), active, `It is ${d.state}: only an ACTIVE deployment can be scaled`),
        button('Logs', () => void showLogs(d, platform)),
        // model-group versions are OCI's: the other platforms replace a deployment's models in place
        platform === 'oci'
          ? button(
              'Versions',
              () => void showVersions(d, platform, () => this.refresh()),
              d.deployment_type !== 'SINGLE',
              'It runs a single model, not a model group: it has no group versions'
            )
          : null,
        button(
          'Copy endpoint',
          () => {
            Clipboard.copyToSystem(d.endpoint ?? '');
            clear(shown(), 'Endpoint copied');
          },
          !!d.endpoint,
          'It has no endpoint yet'
        ),
        button('Use from code', () => void showUsage(d), noKey === null, noKey ?? ''),
        button('Delete', () => void this.confirmDelete(d, act))
      ),
      scaling.node,
      message
    );
  }

  private async confirmDelete(d: Deployment, act: (label: string, run: () => Promise<unknown>) => Promise<void>) {
    const answer = await showDialog({
      title: 'Delete deployment',
      body: `Delete “${d.display_name}” (${d.models.length} models on ${d.instance_shape})? Its model servers stop and it cannot be restored.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      await act('Deleting', () =>
        requestAPI(`deployments/${encodeURIComponent(d.id)}`, { method: 'DELETE' }, { platform: this.platform })
      );
    }
  }
}

/** The runtime log, or one model's, in a dialog (text only). */
async function showLogs(d: Deployment, platform: string): Promise<void> {
  const body = new Widget();
  body.addClass('aqua-logs');
  const pick = h(
    'select',
    { 'aria-label': 'Log of' },
    h('option', { value: '' }, 'runtime'),
    d.models.map(m => h('option', { value: m.model_name }, m.model_name))
  );
  const text = h('pre', { className: 'aqua-log-text' }, 'Loading…');
  // only the log picked last is drawn: an older answer that comes back later is dropped
  let latest = 0;
  const load = async () => {
    const mine = ++latest;
    const model = pick.value;
    text.dataset.state = 'loading';
    let shown: string;
    let state = 'ok';
    try {
      const logs = await requestAPI<Logs>(`deployments/${encodeURIComponent(d.id)}/logs`, {}, {
        platform,
        model_name: model || undefined,
        lines: 200
      });
      shown = logs.text || '(empty)';
    } catch (error) {
      shown = describe(error);
      state = 'error';
    }
    if (mine !== latest) {
      return;
    }
    text.textContent = shown;
    text.scrollTop = text.scrollHeight; // the latest lines first in view
    Object.assign(text.dataset, { state, model }); // model '' is the runtime's log
  };
  pick.addEventListener('change', () => void load());
  body.node.append(h('label', {}, 'Log of ', pick), text);
  void load();
  await showDialog({ title: `Logs: ${d.display_name}`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
}
