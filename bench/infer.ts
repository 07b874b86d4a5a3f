// `npm run bench:infer`: dataset inference (src/datasets/infer.ts) against the hand-written truth of the
// sample files in test/fixtures/infer/ — how many column types and dialects it gets right. The README
// quotes its last line.
import { measureInference, report } from '../test/helpers/infer-fixtures.ts';

process.stdout.write(`${report(await measureInference())}\n`);
