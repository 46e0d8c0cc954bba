/** An OCI deployment's model-group versions (GET deployments/{id}/versions): each update makes a
 * version by CLONE; any earlier one can be rolled back to (POST deployments/{id}/rollback, a LIVE
 * update), after a confirm, the answer's update type and reason shown where the user clicked. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { clear, errorBox, h } from './dom';
import { describe, postJSON, requestAPI } from './request';
import type { CatalogModel, DataList_CatalogModel_, DataList_ModelGroupVersion_, Deployment, DeploymentUpdate, ModelGroupVersion } from './schema';

/** "LIVE update to version 1: <reason>" — what the server says it did, in one line. */
export function updateLine(version: number, update: DeploymentUpdate | null | undefined): string {
  if (!update) {
    return `Rolled back to version ${version}.`;
  }
  return `Rolled back to version ${update.version ?? version}: ${update.update_type} update — ${update.reason}`;
}

/** The members of a version by model name (the OCID in the tooltip), with the inference key a request
 * may name them by; a model the catalog no longer lists shows its OCID. */
function members(v: ModelGroupVersion, names: Map<string, string>): HTMLElement {
  return h(
    'ul',
    { className: 'aqua-version-members' },
    (v.members ?? []).map(m =>
      h(
        'li',
        { title: m.model_id, 'data-model': m.model_id },
        names.get(m.model_id) ?? h('code', {}, m.model_id),
        m.inference_key ? h('span', { className: 'aqua-muted' }, ` · key ${m.inference_key}`) : null
      )
    )
  );
}

/** The version table with a rollback per earlier version; `changed` is told after a rollback. */
export class VersionsView {
  readonly node = h('div', { className: 'aqua-versions', 'aria-live': 'polite' });
  private readonly answer = h('div', { className: 'aqua-version-answer', 'aria-live': 'polite' });

  constructor(
    private readonly d: Deployment,
    private readonly platform: string,
    private readonly changed: () => void = () => undefined
  ) {
    this.node.dataset.state = 'loading';
    this.node.append(h('p', { className: 'aqua-muted' }, 'Loading versions…'), this.answer);
  }

  private get path(): string {
    return `deployments/${encodeURIComponent(this.d.id)}`;
  }

  async load(): Promise<void> {
    let versions: ModelGroupVersion[];
    const query = { platform: this.platform };
    // the catalog names the members; without it (it failed) they show as OCIDs rather than not at all
    const catalog = requestAPI<DataList_CatalogModel_>('models', {}, query).catch(() => ({ data: [] as CatalogModel[] }));
    try {
      versions = (await requestAPI<DataList_ModelGroupVersion_>(`${this.path}/versions`, {}, query)).data;
    } catch (error) {
      this.node.dataset.state = 'error';
      clear(this.node, errorBox(describe(error)), this.answer);
      return;
    }
    this.node.dataset.state = 'ok';
    this.node.dataset.versions = String(versions.length);
    const names = new Map([
      ...this.d.models.map((m): [string, string] => [m.model_id, m.model_name]),
      ...(await catalog).data.map((m): [string, string] => [m.id, m.name])
    ]);
    const rows = [...versions].reverse().map(v => this.row(v, names)); // newest first: what an update just made is on top
    clear(
      this.node,
      h(
        'p',
        { className: 'aqua-muted' },
        'Each update of the models makes a new version of the model group; rolling back moves the deployment to an earlier one in place (a LIVE update).'
      ),
      h(
        'div',
        { className: 'aqua-table-scroll' },
        h(
          'table',
          { className: 'aqua-eval-table aqua-versions-table' },
          h(
            'thead',
            {},
            h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Created'), h('th', {}, 'Members'), h('th', {}, 'Live'), h('th', {}, ''))
          ),
          h('tbody', {}, rows)
        )
      ),
      this.answer
    );
  }

  private row(v: ModelGroupVersion, names: Map<string, string>): HTMLElement {
    const error = h('div', { className: 'aqua-field-error', role: 'alert' });
    const action = h('td', { className: 'aqua-version-action', style: 'text-align:left;max-width:22em' });
    const offer = (): void => {
      clear(
        action,
        h(
          'button',
          {
            className: 'jp-mod-styled aqua-small',
            'aria-label': `Roll back to version ${v.version}`,
            onclick: () => confirm()
          },
          'Roll back to this version'
        ),
        error
      );
    };
    const confirm = (): void => {
      clear(
        action,
        h('span', {}, `Roll back to version ${v.version}? `),
        h('button', { className: 'jp-mod-styled jp-mod-warn aqua-small', onclick: () => void this.rollback(v, action, error) }, 'Roll back'),
        ' ',
        h('button', { className: 'jp-mod-styled aqua-small', onclick: () => offer() }, 'Cancel'),
        error
      );
    };
    if (!v.live) {
      offer();
    }
    return h(
      'tr',
      { 'data-version': v.version, 'data-live': v.live ? 'true' : 'false', className: v.live ? 'aqua-version-live' : '' },
      h('td', { title: v.model_group_id }, `v${v.version}`, v.version_label ? h('span', { className: 'aqua-muted' }, ` ${v.version_label}`) : null),
      h('td', {}, v.created_on ? new Date(v.created_on).toLocaleString() : '—'),
      h('td', { style: 'text-align:left' }, members(v, names)),
      h('td', {}, v.live ? h('span', { className: 'aqua-badge aqua-state-ACTIVE' }, 'live') : ''),
      action
    );
  }

  private async rollback(v: ModelGroupVersion, action: HTMLElement, error: HTMLElement): Promise<void> {
    clear(action, `Rolling back to version ${v.version}…`);
    try {
      const d = await postJSON<Deployment>(`${this.path}/rollback`, { version: v.version }, { platform: this.platform });
      clear(this.answer, h('div', { className: 'aqua-ok', 'data-update': d.update?.update_type ?? '' }, updateLine(v.version, d.update)));
    } catch (e) {
      // the refusal often means this view is stale (another front moved the deployment): read the table
      // again, then say why beside where the button was
      await this.load();
      const cell = this.node.querySelector<HTMLElement>(`tr[data-version="${v.version}"] .aqua-version-action`);
      const beside = cell?.querySelector<HTMLElement>('.aqua-field-error') ?? cell?.appendChild(error);
      if (beside) {
        clear(beside, describe(e));
      } else {
        clear(this.answer, errorBox(describe(e)));
      }
      return;
    }
    this.changed();
    await this.load();
  }
}

/** The Versions dialog of a deployment card. */
export async function showVersions(d: Deployment, platform: string, changed: () => void): Promise<void> {
  const view = new VersionsView(d, platform, changed);
  const body = new Widget({ node: h('div', { className: 'aqua-versions-dialog' }, view.node) });
  void view.load();
  await showDialog({ title: `Versions: ${d.display_name}`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
}
