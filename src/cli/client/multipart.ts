// A multipart/form-data body around one streamed file: the text parts are built up front so the exact
// Content-Length is known without reading the file (the file itself is never held in memory).
import { randomBytes } from 'node:crypto';

export interface MultipartFrame {
  contentType: string;
  /** the text fields and the file part's headers */
  head: Buffer;
  /** the end of the file part and the closing boundary */
  tail: Buffer;
  /** head + file + tail */
  contentLength: number;
}

export function multipartFrame(fields: Record<string, string>, filename: string, fileSize: number, boundary = newBoundary()): MultipartFrame {
  // Option fields go first: the service checks them before it stores a byte of the file.
  const fieldParts = Object.entries(fields)
    .map(([name, value]) => `--${boundary}\r\ncontent-disposition: form-data; name="${quoted(name)}"\r\n\r\n${value}\r\n`)
    .join('');
  const fileHeaders =
    `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${quoted(filename)}"\r\n` +
    'content-type: text/csv\r\n\r\n';
  const head = Buffer.from(fieldParts + fileHeaders);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    head,
    tail,
    contentLength: head.length + fileSize + tail.length,
  };
}

function newBoundary(): string {
  return `----stream-api-${randomBytes(12).toString('hex')}`;
}

/** As browsers do (WHATWG multipart encoding): quotes and line breaks percent-encoded. */
function quoted(value: string): string {
  return value.replaceAll('"', '%22').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}
