// A tenant's `pattern` runs on every value of its column: compiled by RE2 (re2js), matching cannot
// backtrack. With a JavaScript RegExp, `(a+)+$` against 60 a's and a `!` would try about 2^60 paths —
// this file would never finish — where RE2 answers at once.
import { describe, expect, it } from 'vitest';
import { checkValue, compileTenantPattern, normaliseDefinition } from '../../src/datasets/definition.ts';

const column = (pattern: string) => ({ name: 'code', type: 'text' as const, pattern: compileTenantPattern(pattern) });

describe('tenant patterns (RE2 syntax, linear time)', () => {
  it('patterns that backtrack catastrophically in a RegExp answer at once', () => {
    for (const pattern of ['(a+)+$', '^(a|a)*$', '^(a|aa)+$', '(.*a){20}$', '^([a-z]+)*[0-9]$']) {
      // the trailing `!` makes every one of them fail — after trying every split of the a's, for a RegExp
      expect(checkValue(column(pattern), `${'a'.repeat(60)}!`), pattern).toBe('pattern');
    }
    for (const pattern of ['(a+)+$', '^(a|a)*$', '^(a|aa)+$']) {
      expect(checkValue(column(pattern), 'a'.repeat(60)), pattern).toBeNull();
    }
  });

  it('agrees with RegExp.test on the patterns both accept (found anywhere unless anchored)', () => {
    const cases: [string, string][] = [
      ['^[A-Z]{3}$', 'EUR'], ['^[A-Z]{3}$', 'EURO'], ['[0-9]', 'ab3'], ['^[^@\\s]+@[^@\\s]+$', 'a@b'],
      ['^[^@\\s]+@[^@\\s]+$', 'a b@c'], ['^\\d{4}-\\d{2}$', '2024-01'], ['é+', 'café'], ['^\\p{Lu}', 'Émile'],
    ];
    for (const [pattern, value] of cases) {
      expect(compileTenantPattern(pattern).test(value), `${pattern} ~ ${value}`).toBe(new RegExp(pattern, 'u').test(value));
    }
  });

  it('refuses what RE2 does not have (backreferences, lookaround), naming the field', () => {
    for (const pattern of ['^(a)\\1$', '^(?=a)', '(?<!a)b']) {
      expect(() => normaliseDefinition({ name: 'd', columns: [{ name: 'c', type: 'text', pattern }] })).toThrow(/pattern is not a valid regular expression/);
    }
  });
});
