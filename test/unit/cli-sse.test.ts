// The client's text/event-stream parser, fed in every possible chunking.
import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../src/cli/client/sse.ts';

function parseAll(chunks: string[]): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser();
  const events = chunks.flatMap((c) => parser.push(c));
  return { events, parser };
}

const STREAM =
  ': connected\n\n' +
  'id: 1\nevent: status\ndata: {"status":"uploaded"}\n\n' +
  'id: 2\r\nevent: progress\r\ndata: {"rows":1}\r\n\r\n' +
  'retry: 1500\n' +
  'event: progress\ndata: line one\ndata:line two\n\n' +
  'id: 3\revent: done\rdata: {"status":"completed"}\r\r' +
  ': a bare CR is a line end only once the next character is known\n';

const EXPECTED: SseEvent[] = [
  { event: 'status', data: '{"status":"uploaded"}', id: '1' },
  { event: 'progress', data: '{"rows":1}', id: '2' },
  { event: 'progress', data: 'line one\nline two', id: '2' },
  { event: 'done', data: '{"status":"completed"}', id: '3' },
];

describe('SseParser', () => {
  it('parses events, ids, retry, comments and all three line endings', () => {
    const { events, parser } = parseAll([STREAM]);
    expect(events).toEqual(EXPECTED);
    expect(parser.lastEventId).toBe('3');
    expect(parser.retryMs).toBe(1500);
  });

  it('gives the same events whatever the chunking (including a CRLF split in two)', () => {
    for (let size = 1; size <= 7; size++) {
      const chunks = [];
      for (let i = 0; i < STREAM.length; i += size) chunks.push(STREAM.slice(i, i + size));
      expect(parseAll(chunks).events).toEqual(EXPECTED);
    }
    const at = STREAM.indexOf('\r\n');
    expect(parseAll([STREAM.slice(0, at + 1), STREAM.slice(at + 1)]).events).toEqual(EXPECTED);
  });

  it('defaults the type to message, skips events without data, strips one leading BOM', () => {
    const { events } = parseAll(['\ufeffdata: a\n\n', 'event: empty\n\n', 'data\n\n', 'data:  two spaces\n\n']);
    expect(events).toEqual([
      { event: 'message', data: 'a', id: null },
      { event: 'message', data: '', id: null },
      { event: 'message', data: ' two spaces', id: null },
    ]);
  });

  it('an id counts only once its event is complete: a half event is dropped with its id', () => {
    const parser = new SseParser();
    expect(parser.push('id: 7\nevent: status\ndata: {}\n\nid: 8\nevent: progress\ndata: {"half"')).toHaveLength(1);
    expect(parser.lastEventId).toBe('7');
    parser.reset(); // the connection broke: Last-Event-ID must be 7, or event 8 would never be sent again
    expect(parser.lastEventId).toBe('7');
    expect(parser.push('event: done\ndata: {}\n\n')).toEqual([{ event: 'done', data: '{}', id: '7' }]);
    expect(parser.push('id: 9\n\n')).toEqual([]); // no data, no event; the id still takes effect
    expect(parser.lastEventId).toBe('9');
  });
});
