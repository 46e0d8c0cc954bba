/** "Use from code": the deployment's endpoint and key as snippets for the `openai` client and curl,
 * the same lines `aqua-lab demo` prints, each with a Copy button. */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { clear, h } from './dom';
import type { Deployment } from './schema';

export function openaiSnippet(endpoint: string, key: string, model: string): string {
  return [
    'from openai import OpenAI',
    '',
    `client = OpenAI(base_url=${JSON.stringify(endpoint)}, api_key=${JSON.stringify(key)})`,
    'answer = client.chat.completions.create(',
    `    model=${JSON.stringify(model)},`,
    '    messages=[{"role": "user", "content": "Hi"}],',
    ')',
    'print(answer.choices[0].message.content)'
  ].join('\n');
}

export function curlSnippet(endpoint: string, key: string, model: string): string {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }] }).replace(/'/g, `'\\''`);
  return (
    `curl ${endpoint}/chat/completions -H 'Content-Type: application/json' ` +
    `-H 'Authorization: Bearer ${key}' -d '${body}'`
  );
}

/** Why a deployment offers no key snippet (null: it does). */
export function noKeyReason(d: Deployment): string | null {
  if (!d.endpoint) {
    return 'It has no endpoint yet';
  }
  if (!d.api_key) {
    return d.platform === 'oci'
      ? 'OCI endpoints take signed requests (oci.signer), not a key: see the OCI docs for the predict call'
      : 'This deployment has no key';
  }
  return null;
}

export async function showUsage(d: Deployment): Promise<void> {
  const body = new Widget();
  body.addClass('aqua-usage');
  const pick = h(
    'select',
    { 'aria-label': 'Model' },
    d.models.map(m => h('option', { value: m.model_name }, m.model_name))
  );
  const blocks = h('div', {});
  const copied = h('div', { className: 'aqua-muted', 'aria-live': 'polite' });
  const block = (title: string, text: string) => {
    const pre = h('pre', { className: 'aqua-snippet', 'data-snippet': title }, text);
    return h(
      'section',
      {},
      h(
        'div',
        { className: 'aqua-snippet-head' },
        h('strong', {}, title),
        h(
          'button',
          {
            className: 'jp-mod-styled aqua-small',
            'aria-label': `Copy ${title}`,
            onclick: () => {
              Clipboard.copyToSystem(text);
              clear(copied, `${title} copied (it holds the key: keep it private)`);
            }
          },
          'Copy'
        )
      ),
      pre
    );
  };
  const draw = () =>
    clear(
      blocks,
      block('python (openai)', openaiSnippet(d.endpoint!, d.api_key!, pick.value)),
      block('curl', curlSnippet(d.endpoint!, d.api_key!, pick.value))
    );
  pick.addEventListener('change', draw);
  draw();
  body.node.append(
    h('p', { className: 'aqua-muted' }, `Endpoint ${d.endpoint} · the key goes in Authorization: Bearer …`),
    h('label', {}, 'Model ', pick),
    blocks,
    copied
  );
  await showDialog({ title: `Use ${d.display_name} from code`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
}
