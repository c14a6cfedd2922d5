/** Session replay with rrweb, private by default: every input value masked with a fixed-length mask (so not
 * even the length leaks), password fields always, whatever the options say, and [data-private] blocked. */
import { record } from '@rrweb/record';
import type { RrwebEvent } from '../events';
import type { DomOptions } from '../options';
import type { Sink } from '../sink';

export const INPUT_MASK = '*'.repeat(8);
export const DEFAULT_BLOCK_SELECTOR = '[data-private]';
export const DEFAULT_BLOCK_CLASS = 'rr-block';
export const DEFAULT_MASK_TEXT_CLASS = 'rr-mask';

type RecordOptions = NonNullable<Parameters<typeof record<RrwebEvent>>[0]>;
/** The only rrweb options taken from `dom`: others (emit, packFn, plugins, hooks) would change what is sent. */
const DOM_OPTION_NAMES = ['maskAllInputs', 'maskInputOptions', 'maskInputFn', 'maskTextSelector', 'maskTextClass',
  'maskTextFn', 'blockSelector', 'blockClass', 'ignoreClass', 'ignoreSelector', 'recordCanvas', 'collectFonts',
  'inlineImages', 'inlineStylesheet', 'sampling', 'slimDOMOptions'] as const satisfies ReadonlyArray<keyof DomOptions>;

export class Recorder {
  private stopRecording: (() => void) | null = null;

  constructor(private readonly sink: Sink, private readonly options: DomOptions,
    private readonly onEvent: (event: RrwebEvent) => void) {}

  get running(): boolean {
    return this.stopRecording !== null;
  }

  start(): void {
    if (this.stopRecording) return;
    this.stopRecording = record<RrwebEvent>(recordOptions(this.options, this.sink, this.onEvent)) ?? null;
  }

  stop(): void {
    const stop = this.stopRecording;
    this.stopRecording = null;
    stop?.();
  }

  /** A new full snapshot, so the replay can start again from here (new session, or recording events dropped). */
  takeFullSnapshot(): void {
    if (this.stopRecording) record.takeFullSnapshot(true);
  }
}

/** The CSS selectors whose content is private, for other capture (click text) to respect too. */
export function privateSelectors(options: DomOptions | false): string[] {
  if (options === false) return [DEFAULT_BLOCK_SELECTOR, `.${DEFAULT_BLOCK_CLASS}`, `.${DEFAULT_MASK_TEXT_CLASS}`];
  const selectors = [blockSelector(options), `.${options.blockClass ?? DEFAULT_BLOCK_CLASS}`];
  if (typeof options.maskTextClass === 'string') selectors.push(`.${options.maskTextClass}`);
  else if (options.maskTextClass === undefined) selectors.push(`.${DEFAULT_MASK_TEXT_CLASS}`);
  if (options.maskTextSelector) selectors.push(options.maskTextSelector);
  return selectors;
}

export function recordOptions(options: DomOptions, sink: Sink, onEvent: (event: RrwebEvent) => void): RecordOptions {
  const maskAllInputs = options.maskAllInputs !== false;
  const userMaskInputFn = options.maskInputFn;
  const chosen: Partial<Record<keyof DomOptions, unknown>> = {};
  for (const name of DOM_OPTION_NAMES) if (options[name] !== undefined) chosen[name] = options[name];
  return {
    ...(chosen as DomOptions),
    emit: sink.health.guard(onEvent),
    maskAllInputs,
    // rrweb ignores maskInputOptions when maskAllInputs is true; either way passwords stay masked.
    maskInputOptions: { ...(options.maskInputOptions ?? {}), password: true },
    maskInputFn: (text, element) => {
      if (isPassword(element) || !userMaskInputFn) return text ? INPUT_MASK : '';
      return userMaskInputFn(text, element);
    },
    blockClass: options.blockClass ?? DEFAULT_BLOCK_CLASS,
    blockSelector: blockSelector(options),
    errorHandler: () => {
      sink.health.internalErrors++;
      return true; // handled: rrweb must not rethrow into the page
    },
  };
}

/** [data-private] always blocks; a blockSelector option adds to it. */
function blockSelector(options: DomOptions): string {
  return options.blockSelector ? `${DEFAULT_BLOCK_SELECTOR}, ${options.blockSelector}` : DEFAULT_BLOCK_SELECTOR;
}

/** Also true for a password field the page switched to type=text ("show password"): rrweb marks those. */
function isPassword(element: HTMLElement | null): boolean {
  return element instanceof HTMLInputElement
    && (element.type.toLowerCase() === 'password' || element.hasAttribute('data-rr-is-password'));
}
