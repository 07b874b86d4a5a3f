export { CopyTransform, createCopyTransform } from './copy-transform.ts';
export { copyStatement, quoteIdent } from './copy-sql.ts';
export { decoderFor, TextDecodeStream } from './decode.ts';
export {
  type CopyTransformOptions,
  type CopyTransformStats,
  CsvFileError,
  type CsvFileErrorCode,
  type HeaderInfo,
  type Reject,
  type RejectCode,
} from './types.ts';
