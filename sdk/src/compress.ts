/** gzip for request bodies. The server recognises gzip by its magic bytes, so no Content-Encoding header is
 * needed and the request stays a CORS "simple request". Large bodies are compressed in a worker so the page
 * does not stall; every failure falls back one step: worker → main thread → plain JSON. */

export type Compress = (json: string) => Promise<Uint8Array<ArrayBuffer> | string>;

/** Bodies above this are compressed off the main thread. */
export const WORKER_THRESHOLD_CHARS = 64 * 1024;
const WORKER_TIMEOUT_MS = 10_000;

const WORKER_SOURCE = `onmessage = function (e) {
  new Response(new Response(e.data.json).body.pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
    .then(function (buf) { postMessage({ id: e.data.id, buf: buf }, [buf]); },
          function (err) { postMessage({ id: e.data.id, error: String(err) }); });
};`;

export const gzip: Compress = async (json) => {
  if (typeof CompressionStream !== 'function') return json;
  if (json.length > WORKER_THRESHOLD_CHARS) {
    try {
      return await gzipInWorker(json);
    } catch {
      // no worker (CSP, old browser) or it failed: compress here instead
    }
  }
  try {
    return await gzipHere(json);
  } catch {
    return json;
  }
};

async function gzipHere(json: string): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Response(json).body;
  if (!stream) throw new Error('no body stream');
  const buffer = await new Response(stream.pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
  return new Uint8Array(buffer);
}

interface WorkerReply { id: number; buf?: ArrayBuffer; error?: string }

let worker: Worker | null = null;
let workerBroken = false;
let nextJobId = 0;
const jobs = new Map<number, { resolve: (body: Uint8Array<ArrayBuffer>) => void; reject: (error: Error) => void }>();

function gzipInWorker(json: string): Promise<Uint8Array<ArrayBuffer>> {
  const compressor = startWorker();
  const id = nextJobId++;
  return new Promise<Uint8Array<ArrayBuffer>>((resolve, reject) => {
    const timer = setTimeout(() => settle(id)?.reject(new Error('compression worker timed out')), WORKER_TIMEOUT_MS);
    jobs.set(id, {
      resolve: (body) => { clearTimeout(timer); resolve(body); },
      reject: (error) => { clearTimeout(timer); reject(error); },
    });
    compressor.postMessage({ id, json });
  });
}

function settle(id: number) {
  const job = jobs.get(id);
  jobs.delete(id);
  return job;
}

function startWorker(): Worker {
  if (worker) return worker;
  if (workerBroken || typeof Worker !== 'function' || typeof Blob !== 'function') throw new Error('no worker');
  try {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    worker = new Worker(url);
  } catch (error) {
    workerBroken = true;
    throw error;
  }
  worker.onmessage = (event: MessageEvent<WorkerReply>) => {
    const job = settle(event.data.id);
    if (!job) return;
    if (event.data.buf) job.resolve(new Uint8Array(event.data.buf));
    else job.reject(new Error(event.data.error ?? 'compression failed'));
  };
  // A worker blocked by CSP reports it here, asynchronously: fail what waits and stop using workers.
  worker.onerror = () => {
    workerBroken = true;
    worker?.terminate();
    worker = null;
    for (const id of Array.from(jobs.keys())) settle(id)?.reject(new Error('compression worker failed'));
  };
  return worker;
}
