import { beforeEach, describe, expect, it } from 'vitest';
import { isStableId, selectorFor } from '../src/selector';

function html(markup: string): void {
  document.body.innerHTML = markup;
}

function el(selector: string): Element {
  const found = document.querySelector(selector);
  if (!found) throw new Error(`no ${selector}`);
  return found;
}

describe('selectorFor', () => {
  beforeEach(() => html(''));

  it('uses a stable id', () => {
    html('<div><button id="checkout">Pay</button></div>');
    expect(selectorFor(el('button'))).toBe('#checkout');
  });

  it('skips generated ids and falls back to data-testid', () => {
    html('<button id="btn-83726151" data-testid="pay-now">Pay</button>');
    expect(selectorFor(el('button'))).toBe('[data-testid="pay-now"]');
  });

  it('uses name with its tag', () => {
    html('<form><input name="email"></form>');
    expect(selectorFor(el('input'))).toBe('input[name="email"]');
  });

  it('builds a path from the nearest anchor with nth-of-type among same-tag siblings', () => {
    html('<ul id="menu"><li>a</li><li class="item"><span>x</span><a class="link">b</a></li></ul>');
    const selector = selectorFor(el('a.link'));
    expect(selector).toBe('#menu > li.item:nth-of-type(2) > a.link');
    expect(document.querySelector(selector)).toBe(el('a.link'));
  });

  it('leaves out hashed and state classes, so the selector survives a re-render', () => {
    html('<section id="cart"><button class="btn css-1x2y3z is-active">Go</button></section>');
    const button = el('button');
    const before = selectorFor(button);
    button.className = 'btn css-9q8w7e';
    expect(before).toBe('#cart > button.btn');
    expect(selectorFor(button)).toBe(before);
  });

  it('is unchanged by siblings of another tag', () => {
    html('<div id="box"><p>one</p><p>two</p></div>');
    const target = el('p:nth-of-type(2)');
    const before = selectorFor(target);
    el('#box').insertBefore(document.createElement('span'), target);
    expect(selectorFor(target)).toBe(before);
    expect(before).toBe('#box > p:nth-of-type(2)');
  });

  it('stops after five levels without an anchor', () => {
    html('<div><div><div><div><div><div><em>deep</em></div></div></div></div></div></div>');
    const selector = selectorFor(el('em'));
    expect(selector.split(' > ')).toHaveLength(5);
    expect(selector).toBe('div > div > div > div > em');
  });

  it('quotes attribute values safely', () => {
    html('<button data-testid=\'say "hi"\'>x</button>');
    const selector = selectorFor(el('button'));
    expect(document.querySelector(selector)).toBe(el('button'));
  });
});

describe('isStableId', () => {
  it.each([
    ['checkout', true],
    ['main-nav', true],
    ['step2', true],
    [':r1:', false],
    ['ember1234', false],
    ['a1b2c3d4e5', false],
    ['123', false],
    ['', false],
  ])('%s → %s', (id, stable) => {
    expect(isStableId(id)).toBe(stable);
  });
});
