/**
 * serverless.yml as plain data: js-yaml (from node_modules) with CloudFormation's short-form tags (`!GetAtt`,
 * `!Ref`, `!Sub`, …) read as `{ "Fn::GetAtt": … }` objects instead of failing the parse. Serverless variables
 * (`${sls:stage}`) stay the literal strings they are in the file.
 */
import { readFileSync } from 'node:fs';

interface YamlType {
  new (tag: string, opts: { kind: 'scalar' | 'sequence' | 'mapping'; construct: (data: unknown) => unknown }): unknown;
}
interface JsYaml {
  Type: YamlType;
  load(text: string, opts: { schema: unknown }): unknown;
  // js-yaml 3 builds a schema with Schema.create, js-yaml 4 with DEFAULT_SCHEMA.extend.
  Schema?: { create(types: unknown[]): unknown };
  DEFAULT_SCHEMA?: { extend?: (types: unknown[]) => unknown };
}
// js-yaml ships no types in this tree.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as JsYaml;

const TAGS = ['Ref', 'Condition', 'GetAtt', 'GetAZs', 'ImportValue', 'Sub', 'Join', 'Select', 'Split', 'FindInMap', 'Base64', 'Cidr', 'And', 'Equals', 'If', 'Not', 'Or', 'Transform'];
const types = TAGS.flatMap((name) => {
  const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
  return (['scalar', 'sequence', 'mapping'] as const).map(
    (kind) => new yaml.Type(`!${name}`, { kind, construct: (data) => ({ [key]: name === 'GetAtt' && typeof data === 'string' ? data.split('.') : data }) }),
  );
});
const schema = typeof yaml.DEFAULT_SCHEMA?.extend === 'function' ? yaml.DEFAULT_SCHEMA.extend(types) : yaml.Schema!.create(types);

export const loadServerlessYaml = (path: string): unknown => yaml.load(readFileSync(path, 'utf8'), { schema });
