/**
 * Reads serverless.yml the way a test needs it: plain YAML, with CloudFormation's short-form tags
 * (`!GetAtt`, `!Ref`, `!Sub`, ...) kept as `{ "Fn::GetAtt": ... }`-style objects instead of failing the parse.
 * Serverless variables (`${sls:stage}`) stay as the literal strings they are in the file.
 */
import { readFileSync } from 'node:fs';

interface YamlType {
  new (tag: string, opts: { kind: 'scalar' | 'sequence' | 'mapping'; construct: (data: unknown) => unknown }): unknown;
}
interface JsYaml {
  Type: YamlType;
  load(text: string, opts: { schema: unknown }): unknown;
  // js-yaml 3 (the copy hoisted in node_modules) builds schemas with Schema.create; js-yaml 4 with extend.
  Schema?: { create(types: unknown[]): unknown };
  DEFAULT_SCHEMA?: { extend?: (types: unknown[]) => unknown };
}
// js-yaml (a devDependency) ships no types; this is the one place that loads it.
const yaml = require('js-yaml') as JsYaml;

const CFN_TAGS = ['Ref', 'Condition', 'GetAtt', 'GetAZs', 'ImportValue', 'Sub', 'Join', 'Select', 'Split',
  'FindInMap', 'Base64', 'Cidr', 'And', 'Equals', 'If', 'Not', 'Or', 'Transform'];

const cfnTypes = CFN_TAGS.flatMap((name) => {
  const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
  return (['scalar', 'sequence', 'mapping'] as const).map(
    (kind) =>
      new yaml.Type(`!${name}`, {
        kind,
        // `!GetAtt OtpTable.Arn` is the short form of `Fn::GetAtt: [OtpTable, Arn]`.
        construct: (data) => ({ [key]: name === 'GetAtt' && typeof data === 'string' ? data.split('.') : data }),
      }),
  );
});

const schema =
  typeof yaml.DEFAULT_SCHEMA?.extend === 'function' ? yaml.DEFAULT_SCHEMA.extend(cfnTypes) : yaml.Schema!.create(cfnTypes);

/** Used by the tests (serverless.yml against the code) and by the benchmark (its esbuild options). */
export const loadCfnYaml = (path: string): unknown => yaml.load(readFileSync(path, 'utf8'), { schema });
