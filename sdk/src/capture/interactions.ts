/** Click and input events. Inputs are reported by element only: no value, ever. */
import { truncate } from '../json';
import { selectorFor } from '../selector';
import type { Sink } from '../sink';

const MAX_TEXT_CHARS = 100;
/** Clicks land on icons and spans inside the control the user meant; report the control. */
const INTERACTIVE = 'a, button, [role="button"], [role="link"], [role="menuitem"], [role="tab"], label, summary, '
  + 'input, select, textarea';
/** Text of form fields is their value; text inside these is hidden from the replay, so from clicks too. */
const NO_TEXT_FIELDS = 'input, textarea, select, option, [contenteditable]:not([contenteditable="false"])';

export interface InteractionOptions {
  /** Selectors of private content (rrweb's block and mask-text settings): clicks there carry no text. */
  privateSelectors: string[];
}

export function installInteractions(sink: Sink, options: InteractionOptions): void {
  const privateSelector = options.privateSelectors.filter(isValidSelector).join(', ');
  const inputReported = new WeakSet<EventTarget>(); // fields that already sent their input event since focus

  document.addEventListener('click', sink.health.guard((event: MouseEvent) => {
    if (!(event.target instanceof Element)) return;
    const target = event.target.closest(INTERACTIVE) ?? event.target;
    sink.activity();
    sink.emit({
      type: 'click',
      ts: sink.now(),
      selector: selectorFor(target),
      text: visibleText(target, privateSelector),
      x: Math.round(event.clientX),
      y: Math.round(event.clientY),
    });
  }), true);

  const reportInput = (target: EventTarget | null): void => {
    if (!(target instanceof Element)) return;
    sink.activity();
    sink.emit({ type: 'input', ts: sink.now(), selector: selectorFor(target) });
  };
  document.addEventListener('focusin', sink.health.guard((event: FocusEvent) => {
    if (event.target) inputReported.delete(event.target);
  }), true);
  document.addEventListener('input', sink.health.guard((event: Event) => {
    if (!event.target || inputReported.has(event.target)) return;
    inputReported.add(event.target);
    reportInput(event.target);
  }), true);
  document.addEventListener('change', sink.health.guard((event: Event) => reportInput(event.target)), true);
}

function visibleText(element: Element, privateSelector: string): string | undefined {
  if (element.closest(NO_TEXT_FIELDS) || element.querySelector(NO_TEXT_FIELDS)) return undefined;
  if (privateSelector && (element.closest(privateSelector) || element.querySelector(privateSelector))) {
    return undefined;
  }
  const raw = element instanceof HTMLElement && typeof element.innerText === 'string'
    ? element.innerText
    : element.textContent ?? '';
  const text = truncate(raw.replace(/\s+/g, ' ').trim(), MAX_TEXT_CHARS);
  return text || undefined;
}

function isValidSelector(selector: string): boolean {
  try {
    document.createDocumentFragment().querySelector(selector);
    return selector.trim() !== '';
  } catch {
    return false;
  }
}
