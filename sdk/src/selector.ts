/** CSS selectors for clicked elements that stay the same across page loads and deploys, so the server can
 * group clicks on "the same" element: a stable id, else a test/name attribute, else a short path of
 * tag.class:nth-of-type() up from the nearest such anchor. */

const MAX_PATH_DEPTH = 5;
const TEST_ATTRIBUTES = ['data-testid', 'data-test-id', 'data-test', 'data-cy', 'data-qa'];
/** Classes that describe a state, not an element: they change between two clicks on the same button. */
const STATE_CLASS = /^(is-|has-|active$|focus|hover|selected$|open$|opened$|closed$|disabled$|checked$|visible$|hidden$)/;

export function selectorFor(element: Element): string {
  const segments: string[] = [];
  let current: Element | null = element;
  while (current && segments.length < MAX_PATH_DEPTH) {
    const anchor = anchorSelector(current);
    if (anchor) return [anchor, ...segments].join(' > ');
    const tag = current.tagName.toLowerCase();
    if (tag === 'html') break;
    segments.unshift(pathSegment(current));
    if (tag === 'body') break;
    current = current.parentElement;
  }
  return segments.join(' > ');
}

/** An id is stable when written by a person: generated ones are digit-heavy or carry React's ":r1:" marks. */
export function isStableId(id: string): boolean {
  if (id === '' || id.length > 64 || /[:«»]/.test(id) || /\d{4,}/.test(id)) return false;
  const digits = id.replace(/\D/g, '').length;
  return digits / id.length <= 0.3 && /^[A-Za-z]/.test(id);
}

function anchorSelector(element: Element): string | null {
  const id = element.getAttribute('id');
  if (id !== null && isStableId(id)) return `#${cssEscape(id)}`;
  for (const name of TEST_ATTRIBUTES) {
    const value = element.getAttribute(name);
    if (value) return `[${name}="${cssString(value)}"]`;
  }
  const name = element.getAttribute('name');
  if (name) return `${element.tagName.toLowerCase()}[name="${cssString(name)}"]`;
  return null;
}

function pathSegment(element: Element): string {
  const tag = element.tagName.toLowerCase();
  const classes = (element.getAttribute('class') ?? '').split(/\s+/).filter(isStableClass).slice(0, 2);
  let segment = tag + classes.map((name) => `.${cssEscape(name)}`).join('');
  const parent = element.parentElement;
  if (parent && tag !== 'body') {
    const sameTag = Array.from(parent.children).filter((sibling) => sibling.tagName === element.tagName);
    if (sameTag.length > 1) segment += `:nth-of-type(${sameTag.indexOf(element) + 1})`;
  }
  return segment;
}

/** Hashed class names (CSS modules, styled-components, emotion) carry digits; state classes come and go. */
function isStableClass(name: string): boolean {
  return name !== '' && name.length <= 40 && !/\d/.test(name) && !STATE_CLASS.test(name)
    && /^[A-Za-z_-][A-Za-z_-]*$/.test(name);
}

function cssEscape(value: string): string {
  if (typeof CSS !== 'undefined' && typeof CSS.escape === 'function') return CSS.escape(value);
  return value.replace(/^(\d)/, '\\3$1 ').replace(/[^A-Za-z0-9_-]/g, (char) => `\\${char}`);
}

function cssString(value: string): string {
  return value.replace(/["\\]/g, (char) => `\\${char}`).replace(/\n/g, '\\a ');
}
