import { afterEach, describe, expect, it } from 'vitest';
import { formatConsoleArgs } from '../src/capture/console';
import { INPUT_MASK, privateSelectors, recordOptions, Recorder } from '../src/capture/recording';
import type { RrwebEvent } from '../src/events';
import { Health } from '../src/health';
import type { DomOptions } from '../src/options';
import type { Sink } from '../src/sink';

const sink: Sink = { emit: () => undefined, activity: () => undefined, now: () => Date.now(), active: true,
  health: new Health() };

async function recordPage(markup: string, options: DomOptions): Promise<string> {
  document.body.innerHTML = markup;
  const events: RrwebEvent[] = [];
  const recorder = new Recorder(sink, options, (event) => events.push(event));
  recorder.start();
  for (const input of Array.from(document.querySelectorAll('input'))) {
    input.value = `${input.value}-typed`;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  recorder.stop();
  return JSON.stringify(events);
}

describe('recording privacy', () => {
  afterEach(() => { document.body.innerHTML = ''; });

  it('masks every input with a fixed-length mask by default and blocks [data-private]', async () => {
    const json = await recordPage(`<input type="password" value="pw-secret"><input value="my-email@x.y">
      <div data-private><p>card 4242</p></div><p class="rr-block">blocked text</p>`, {});
    expect(json).not.toContain('pw-secret');
    expect(json).not.toContain('my-email');
    expect(json).not.toContain('4242');
    expect(json).not.toContain('blocked text');
    expect(json).toContain(`"${INPUT_MASK}"`);
    expect(json).not.toMatch(/"\*{9,}"/); // the mask never follows the value's length
  });

  it('keeps passwords masked when the options loosen everything else', async () => {
    const json = await recordPage('<input type="password" value="pw-secret"><input value="visible-text">', {
      maskAllInputs: false,
      maskInputOptions: { password: false },
      maskInputFn: (text) => text,
    });
    expect(json).not.toContain('pw-secret');
    expect(json).toContain('visible-text-typed');
  });

  it('adds a custom blockSelector to [data-private] instead of replacing it', async () => {
    const json = await recordPage('<div data-private>one-secret</div><div class="ad">two-secret</div>',
      { blockSelector: '.ad' });
    expect(json).not.toContain('one-secret');
    expect(json).not.toContain('two-secret');
    expect(privateSelectors({ blockSelector: '.ad' })).toEqual(['[data-private], .ad', '.rr-block', '.rr-mask']);
  });
});

describe('recordOptions', () => {
  it('passes on only the documented dom options, never ones that change what is sent', () => {
    const options = recordOptions({ emit: () => undefined, packFn: () => 'packed', plugins: [], recordCanvas: true,
      maskAllInputs: false } as DomOptions, sink, () => undefined) as Record<string, unknown>;
    expect(options.packFn).toBeUndefined();
    expect(options.plugins).toBeUndefined();
    expect(options).toMatchObject({ recordCanvas: true, maskAllInputs: false, blockClass: 'rr-block',
      blockSelector: '[data-private]', maskInputOptions: { password: true } });
  });
});

describe('formatConsoleArgs', () => {
  it('formats like the console, circular-safe and truncated to 2,000 characters', () => {
    const loop: Record<string, unknown> = { n: 1n };
    loop.loop = loop;
    expect(formatConsoleArgs(['a', 1, null, undefined, loop])).toBe('a 1 null undefined {"n":"1n","loop":"[Circular]"}');
    expect(formatConsoleArgs(['x'.repeat(5_000)])).toHaveLength(2_000);
    const shared = { v: 1 };
    expect(formatConsoleArgs([{ a: shared, b: shared }])).toBe('{"a":{"v":1},"b":{"v":1}}'); // not a cycle
  });
});
