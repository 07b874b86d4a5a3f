import { describe, expect, it } from 'vitest';
import { normaliseDefinition, DefinitionError } from '../../src/datasets/definition.ts';
import { DEFAULT_INPUT_FORMAT, InputFormatError, normaliseInputFormat, resolveInputFormat } from '../../src/ingest/csv/input-format.ts';

describe('input format', () => {
  it('spells keys canonically and leaves defaults out', () => {
    expect(normaliseInputFormat({ delimiter: 'tab', encoding: 'CP1252', dateFormat: 'dd/mm/yyyy', decimalSeparator: ',', quotes: 'Relaxed' })).toEqual({
      delimiter: '\t',
      encoding: 'windows-1252',
      dateFormat: 'DD/MM/YYYY',
      decimalSeparator: ',',
      quotes: 'relaxed',
    });
    expect(normaliseInputFormat({ delimiter: ',', encoding: 'UTF8', quotes: 'strict' })).toEqual({});
  });

  it.each([
    [{ delimiter: ':' }, 'format.delimiter'],
    [{ encoding: 'ebcdic' }, 'format.encoding'],
    [{ dateFormat: 'YYYYMMDD' }, 'format.dateFormat'],
    [{ decimalSeparator: "'" }, 'format.decimalSeparator'],
    [{ quotes: 'none' }, 'format.quotes'],
  ])('refuses %j naming the field', (input, field) => {
    expect(() => normaliseInputFormat(input)).toThrow(InputFormatError);
    expect(() => normaliseInputFormat(input)).toThrow(field);
  });

  it('layers an upload over a dataset over the defaults', () => {
    expect(resolveInputFormat({ delimiter: ';', decimalSeparator: ',' }, { delimiter: '|' })).toEqual({ ...DEFAULT_INPUT_FORMAT, delimiter: '|', decimalSeparator: ',' });
  });

  it('is part of a dataset definition, checked like the rest', () => {
    const columns = [{ name: 'a', type: 'text' }];
    expect(normaliseDefinition({ name: 'd', columns, format: { delimiter: ';', encoding: 'utf-8' } }).format).toEqual({ delimiter: ';' });
    expect(normaliseDefinition({ name: 'd', columns, format: {} }).format).toBeUndefined();
    expect(() => normaliseDefinition({ name: 'd', columns, format: { encoding: 'koi8' } })).toThrow(DefinitionError);
  });
});
