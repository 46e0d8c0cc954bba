/**
 * A model's colour by its served name: the same in the sidebar, the widgets and the HTML reports.
 * COLOURS is aqua_lab/data/palette.json's list and colourMap the rule of aqua_lab/palette.py
 * (tests/test_palette.py runs both on the same names and compares): each name's first choice is
 * its FNV-1a hash (of its UTF-8 bytes) modulo the palette's size; names taken in code point order
 * move to the next free colour while one is free.
 */
export const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];

function fnv1a(text: string): number {
  let value = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    value = Math.imul(value ^ byte, 0x01000193) >>> 0;
  }
  return value;
}

/** Python's str order (code points), not JavaScript's (UTF-16 code units). */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a, c => c.codePointAt(0)!);
  const y = Array.from(b, c => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) {
      return x[i] - y[i];
    }
  }
  return x.length - y.length;
}

/** A colour per distinct served name, in the order the names come. */
export function colourMap(servedNames: Iterable<string>): Map<string, string> {
  const names = [...new Set(servedNames)];
  const used = new Set<number>();
  const chosen = new Map<string, string>();
  for (const name of [...names].sort(byCodePoint)) {
    let slot = fnv1a(name) % COLOURS.length;
    while (used.size < COLOURS.length && used.has(slot)) {
      slot = (slot + 1) % COLOURS.length;
    }
    used.add(slot);
    chosen.set(name, COLOURS[slot]);
  }
  return new Map(names.map(n => [n, chosen.get(n)!]));
}
