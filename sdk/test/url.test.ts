import { describe, expect, it } from 'vitest';
import { DEFAULT_STRIP_QUERY_PARAMS, sanitizeUrl } from '../src/url';

const strip = (url: string, keys = DEFAULT_STRIP_QUERY_PARAMS, base?: string) => sanitizeUrl(url, keys, base);

describe('sanitizeUrl', () => {
  it('removes the default keys and keys containing them, in any case', () => {
    expect(strip('https://a.test/p?q=1&token=abc&ACCESS_TOKEN=x&Password=p&authCode=z&page=2'))
      .toBe('https://a.test/p?q=1&page=2');
  });

  it('drops the ? when nothing is left', () => {
    expect(strip('https://a.test/p?token=abc')).toBe('https://a.test/p');
  });

  it('keeps kept parameters exactly as written', () => {
    expect(strip('https://a.test/s?q=a+b%20c&token=1')).toBe('https://a.test/s?q=a+b%20c');
  });

  it('uses custom keys instead of the defaults', () => {
    expect(strip('https://a.test/?sid=1&token=2&session_sid=3', ['sid'])).toBe('https://a.test/?token=2');
  });

  it('matches percent-encoded key names', () => {
    expect(strip('https://a.test/?%74oken=1&a=2')).toBe('https://a.test/?a=2');
  });

  it('sanitises parameters in fragments (hash routers, OAuth) and keeps plain anchors', () => {
    expect(strip('https://a.test/#/reset?token=abc&step=2')).toBe('https://a.test/#/reset?step=2');
    expect(strip('https://a.test/cb#access_token=abc&state=xyz')).toBe('https://a.test/cb#state=xyz');
    expect(strip('https://a.test/doc#section-2')).toBe('https://a.test/doc#section-2');
  });

  it('resolves relative URLs against the base', () => {
    expect(strip('/api/items?auth=1&id=7', DEFAULT_STRIP_QUERY_PARAMS, 'https://shop.test/cart'))
      .toBe('https://shop.test/api/items?id=7');
  });

  it('removes user:password credentials', () => {
    expect(strip('https://bob:secret@a.test/x')).toBe('https://a.test/x');
  });

  it('still filters a string that is not a URL', () => {
    expect(strip('not a url?token=1&b=2')).toBe('not a url?b=2');
  });
});
