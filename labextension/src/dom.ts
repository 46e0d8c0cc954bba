/** A small element builder: every string child becomes a text node, so nothing is parsed as HTML. */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Array<Child | Child[]>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'className') {
      el.className = String(value);
    } else if (key === 'value' && 'value' in el) {
      // the default too: what the user changed is then told from what was drawn (carryUserState)
      if ('defaultValue' in el) {
        (el as HTMLInputElement).defaultValue = String(value);
      }
      (el as HTMLInputElement).value = String(value);
    } else if (key === 'checked' || key === 'disabled' || key === 'selected') {
      if (key === 'selected' && el instanceof HTMLOptionElement) {
        el.defaultSelected = !!value;
      }
      (el as any)[key] = !!value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Array<Child | Child[]>): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el: Element, ...children: Array<Child | Child[]>): void {
  el.replaceChildren();
  append(el, children);
}

/** A message where the user acted: `role=alert` so screen readers announce it. */
export function errorBox(message: string): HTMLElement {
  return h('div', { className: 'aqua-error', role: 'alert' }, message);
}

type Control = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

function changedByUser(control: Control): boolean {
  return control instanceof HTMLSelectElement
    ? [...control.options].some(o => o.selected !== o.defaultSelected)
    : control.value !== control.defaultValue;
}

/**
 * A view drawn again from new data (a poll, a re-plan) keeps what the user was doing in its old copy:
 * values typed or chosen (controls matched by their aria-label), the field marks of a refusal, the
 * focus, and the elements marked `data-keep="<name>"`: whether they are hidden or open, and (with
 * `data-keep-children`) what they show, such as a message.  Nothing the user did not change is carried:
 * the new data wins there.  `focused`: what had the focus before the old copy left the page (a control,
 * or any element with an aria-label, such as a card's button).
 */
export function carryUserState(from: Element, to: Element, focused: Element | null = document.activeElement): void {
  // shown first: a hidden field cannot take the focus back
  const kept = (root: Element) => new Map([...root.querySelectorAll<HTMLElement>('[data-keep]')].map(e => [e.dataset.keep, e]));
  const marked = kept(to);
  for (const [name, old] of kept(from)) {
    const twin = marked.get(name);
    if (!twin) {
      continue;
    }
    twin.hidden = old.hidden;
    if (old instanceof HTMLDetailsElement && twin instanceof HTMLDetailsElement) {
      twin.open = old.open;
    }
    if (old.dataset.keepChildren !== undefined && old.childNodes.length) {
      twin.replaceChildren(...old.childNodes);
    }
  }
  // matched by label, and by order among controls of one label (two copies of a model have the same)
  const byLabel = (root: Element) => {
    const found = new Map<string, Control[]>();
    for (const c of root.querySelectorAll<Control>('input[aria-label], textarea[aria-label], select[aria-label]')) {
      const label = c.getAttribute('aria-label')!;
      found.set(label, [...(found.get(label) ?? []), c]);
    }
    return found;
  };
  const twins = byLabel(to);
  const pairs = [...byLabel(from)].flatMap(([label, olds]) => olds.map((old, i) => [old, twins.get(label)?.[i]] as const));
  for (const [old, twin] of pairs) {
    if (!twin || twin.tagName !== old.tagName) {
      continue;
    }
    if (changedByUser(old)) {
      twin.value = old.value;
      twin.dispatchEvent(new Event('change')); // what depends on it (a mode's fields) follows
    }
    const invalid = old.getAttribute('aria-invalid');
    if (invalid !== null) {
      twin.setAttribute('aria-invalid', invalid);
    }
    if (old === focused) {
      twin.focus();
      if (!(old instanceof HTMLSelectElement) && !(twin instanceof HTMLSelectElement)) {
        try {
          twin.setSelectionRange(old.selectionStart, old.selectionEnd); // number inputs have no selection
        } catch {
          // nothing to restore
        }
      }
    }
  }
  // a focused button (a keyboard user on a card's actions) is found again by its label
  if (focused instanceof HTMLElement && focused.tagName === 'BUTTON' && from.contains(focused)) {
    const label = focused.getAttribute('aria-label') ?? focused.textContent;
    const twin = [...to.querySelectorAll<HTMLElement>('button')].find(b => (b.getAttribute('aria-label') ?? b.textContent) === label);
    twin?.focus();
  }
}
