/**
 * The OCI platform chosen from the sidebar: config file, profile, region, compartment, project and
 * (for the emulator) an endpoint.  Check builds the platform on the server and makes one cheap call,
 * naming the field that is wrong; Save keeps the choice for this user (the server reads it on the
 * next OCI request, no restart), so OCI no longer needs environment variables before JupyterLab starts.
 */
import { clear, errorBox, h } from './dom';
import { describe, postJSON, requestAPI } from './request';
import type { OciCheck, OciChoice, OciSettings } from './schema';

type Field = keyof OciChoice;

const FIELDS: Array<{ key: Field; label: string; server: string; fallback: string }> = [
  { key: 'config_file', label: 'Config file', server: 'oci_config_file', fallback: '~/.oci/config' },
  { key: 'profile', label: 'Profile', server: 'oci_profile', fallback: 'DEFAULT' },
  { key: 'region', label: 'Region', server: 'oci_region', fallback: "the profile's region" },
  { key: 'compartment_id', label: 'Compartment OCID', server: 'compartment_id', fallback: 'ocid1.compartment.oc1..' },
  { key: 'project_id', label: 'Project OCID', server: 'project_id', fallback: 'ocid1.datascienceproject.oc1..' },
  { key: 'service_compartment_id', label: 'Service models compartment', server: 'service_compartment_id', fallback: "AQUA's (ODSC_MODEL_COMPARTMENT_OCID)" },
  { key: 'endpoint', label: 'Endpoint (emulator)', server: 'oci_endpoint', fallback: "OCI's own" }
];

/** The form; `onSaved` runs after a save so the sidebar lists the chosen compartment's deployments. */
export function ociSettingsForm(onSaved: () => void): { node: HTMLElement; open: () => void } {
  const edited = new Set<Field>(); // typed since the last save: a load landing later does not overwrite them
  const inputs = new Map<Field, HTMLInputElement>(
    FIELDS.map(f => [
      f.key,
      h('input', { type: 'text', name: f.key, spellcheck: 'false', 'aria-label': f.label, oninput: () => edited.add(f.key) })
    ])
  );
  const result = h('div', { className: 'aqua-oci-result', 'aria-live': 'polite' });
  const path = h('div', { className: 'aqua-muted aqua-oci-path' });
  const choice = (): OciChoice =>
    Object.fromEntries([...inputs].map(([k, input]) => [k, input.value.trim() || null])) as OciChoice;
  const mark = (field: string | null | undefined) => {
    for (const [k, input] of inputs) {
      input.setAttribute('aria-invalid', String(k === field));
    }
  };
  const show = (check: OciCheck) => {
    mark(check.field);
    const where = check.field ? `${FIELDS.find(f => f.key === check.field)?.label ?? check.field}: ` : '';
    clear(
      result,
      check.ok
        ? h('div', { className: 'aqua-ok', 'data-ok': 'true' }, `✓ ${check.message}`)
        : h('div', { className: 'aqua-error', role: 'alert', 'data-ok': 'false' }, `${where}${check.message}`)
    );
  };
  const run = async (label: string, work: () => Promise<void>) => {
    clear(result, `${label}…`);
    mark(null);
    try {
      await work();
    } catch (error) {
      clear(result, errorBox(describe(error)));
    }
  };
  const check = () => run('Checking', async () => show(await postJSON<OciCheck>('platforms/oci/check', choice())));
  const save = () =>
    run('Saving', async () => {
      const saved = await requestAPI<OciSettings>('platforms/oci/settings', { method: 'PUT', body: JSON.stringify(choice()) });
      edited.clear();
      fill(saved);
      // saved either way (a compartment may be offline now), but say at once whether it answers
      show(await postJSON<OciCheck>('platforms/oci/check', choice()));
      onSaved();
    });
  const fill = (settings: OciSettings) => {
    for (const f of FIELDS) {
      const input = inputs.get(f.key)!;
      if (!edited.has(f.key)) {
        input.value = settings.choice[f.key] ?? '';
      }
      input.placeholder = settings.server[f.server] ?? f.fallback;
    }
    path.textContent = `Saved for you only in ${settings.path}; empty fields use the server's configuration.`;
  };
  const node = h(
    'form',
    {
      className: 'aqua-oci-settings',
      hidden: true,
      'aria-label': 'OCI settings',
      onsubmit: ((e: Event) => {
        e.preventDefault();
        void save();
      }) as EventListener
    },
    h('div', { className: 'aqua-oci-title' }, 'OCI settings'),
    FIELDS.map(f => h('label', { className: 'aqua-field' }, h('span', {}, f.label), inputs.get(f.key)!)),
    h(
      'div',
      { className: 'aqua-toolbar' },
      h('button', { className: 'jp-mod-styled', type: 'button', onclick: () => void check() }, 'Check'),
      h('button', { className: 'jp-mod-styled jp-mod-accept', type: 'submit' }, 'Save'),
      h(
        'button',
        {
          className: 'jp-mod-styled',
          type: 'button',
          onclick: () => {
            node.hidden = true;
            edited.clear(); // unsaved typing goes with the form: opened again, it shows what is saved
          }
        },
        'Close'
      )
    ),
    result,
    path
  );
  // what was saved, read each time the form opens: typing may begin before it lands (kept, see `edited`),
  // and a Check answered meanwhile stays; data-state says when the saved values are in
  const open = () => {
    node.hidden = false;
    node.dataset.state = 'loading';
    const loading = h('span', {}, 'Loading…');
    clear(result, loading);
    void (async () => {
      try {
        fill(await requestAPI<OciSettings>('platforms/oci/settings'));
        if (loading.isConnected) {
          clear(result);
        }
      } catch (error) {
        clear(result, errorBox(describe(error)));
      }
      node.dataset.state = 'ready';
    })();
  };
  return { node, open };
}
