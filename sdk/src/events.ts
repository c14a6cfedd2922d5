/** The events of the ingest wire format. The server rejects unknown fields, so these are exactly its shapes;
 * optional fields are left undefined (JSON.stringify omits them) rather than null. */
import type { JsonObject } from './json';

export type ConsoleLevel = 'debug' | 'info' | 'log' | 'warn' | 'error';
export type VitalName = 'LCP' | 'FCP' | 'CLS' | 'INP' | 'TTFB';

export interface PageEvent { type: 'page'; ts: number; url: string; title?: string; referrer?: string }
export interface ClickEvent { type: 'click'; ts: number; selector: string; text?: string; x?: number; y?: number }
export interface InputEvent { type: 'input'; ts: number; selector: string }
export interface ConsoleEvent { type: 'console'; ts: number; level: ConsoleLevel; message: string }
export interface NetworkEvent {
  type: 'network';
  ts: number;
  method: string;
  url: string;
  status?: number;
  durationMs?: number;
  requestBytes?: number;
  responseBytes?: number;
  requestHeaders?: Record<string, string>;
  responseHeaders?: Record<string, string>;
  requestBody?: string;
  responseBody?: string;
}
export interface ErrorEvent {
  type: 'error';
  ts: number;
  message: string;
  errorType?: string;
  stack?: string;
  handled: boolean;
  tags?: Record<string, string>;
  extra?: JsonObject;
}
export interface CustomEvent { type: 'custom'; ts: number; name: string; properties?: JsonObject }
export interface IdentifyEvent { type: 'identify'; ts: number; userId: string; traits?: JsonObject }
export interface VitalEvent { type: 'vital'; ts: number; name: VitalName; value: number }
/** rrweb's own event; only the fields the SDK reads are typed, the rest is sent as rrweb made it. */
export interface RrwebEvent { type: number; timestamp: number }
export interface RecordingEvent { type: 'recording'; ts: number; data: RrwebEvent }

export type WireEvent =
  | PageEvent | ClickEvent | InputEvent | ConsoleEvent | NetworkEvent | ErrorEvent | CustomEvent
  | IdentifyEvent | VitalEvent | RecordingEvent;

/** rrweb's event type for incremental snapshots (mutations, mouse moves, inputs): the first to go when the
 * buffer is full, since a new full snapshot makes up for them. */
export const RRWEB_INCREMENTAL_SNAPSHOT = 3;
