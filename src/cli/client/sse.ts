// A text/event-stream parser (the WHATWG "event stream interpretation", minus what a CLI never needs).
// Pure: feed it decoded text in any chunking, get complete events back.

export interface SseEvent {
  /** `message` when the event had no `event:` field */
  event: string;
  data: string;
  /** the last event id in force (an event without `id:` carries the previous one) */
  id: string | null;
}

export class SseParser {
  /** what to send as Last-Event-ID when reconnecting: set by complete events only */
  lastEventId: string | null = null;
  /** the server's `retry:` advice, in ms */
  retryMs: number | null = null;

  private buffer = '';
  private sawFirstChunk = false;
  private eventType = '';
  private dataLines: string[] = [];
  private hasData = false;
  /** an `id:` takes effect only when its event is complete (the spec's "last event ID buffer") */
  private idBuffer: string | null = null;

  push(text: string): SseEvent[] {
    if (!this.sawFirstChunk && text.length > 0) {
      this.sawFirstChunk = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    const events: SseEvent[] = [];
    for (;;) {
      const end = lineEnd(this.buffer);
      if (end === null) break;
      const line = this.buffer.slice(0, end.at);
      this.buffer = this.buffer.slice(end.at + end.length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** A stream that ends mid-event drops that event, as the spec says. */
  reset(): void {
    this.buffer = '';
    this.sawFirstChunk = false;
    this.eventType = '';
    this.dataLines = [];
    this.hasData = false;
    this.idBuffer = this.lastEventId;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // a comment: heartbeats
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.dataLines.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    this.lastEventId = this.idBuffer;
    const event: SseEvent | null = this.hasData
      ? { event: this.eventType || 'message', data: this.dataLines.join('\n'), id: this.lastEventId }
      : null;
    this.eventType = '';
    this.dataLines = [];
    this.hasData = false;
    return event;
  }
}

/** The first line ending in `text` (CRLF, LF or CR); a trailing CR may be half of a CRLF, so it waits. */
function lineEnd(text: string): { at: number; length: number } | null {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) return { at: i, length: 1 };
    if (c === 13) {
      if (i + 1 === text.length) return null;
      return { at: i, length: text.charCodeAt(i + 1) === 10 ? 2 : 1 };
    }
  }
  return null;
}
