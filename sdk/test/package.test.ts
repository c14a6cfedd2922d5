import { describe, expect, it } from 'vitest';
import { gzip, WORKER_THRESHOLD_CHARS } from '../src/compress';
import { SDK_VERSION } from '../src/version';
import { bodyText } from './helpers';
import pkg from '../package.json';

describe('package', () => {
  it('reports the version package.json declares', () => {
    expect(SDK_VERSION).toBe(pkg.version);
  });
});

describe('gzip', () => {
  it.each([['small', 100], ['large (worker, falling back to the main thread)', WORKER_THRESHOLD_CHARS + 1]])(
    'compresses a %s body to gzip bytes that decode to the JSON',
    async (_label, size) => {
      const json = JSON.stringify({ pad: 'a'.repeat(size) });
      const body = await gzip(json);
      expect(body).toBeInstanceOf(Uint8Array);
      const bytes = body as Uint8Array;
      expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]); // the magic bytes the server recognises
      expect(bytes.length).toBeLessThan(json.length);
      expect(await bodyText(bytes)).toBe(json);
    },
  );
});
