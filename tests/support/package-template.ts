/**
 * The packaged CloudFormation template, seen the way CloudFormation would deploy it: Conditions evaluated
 * (only the literal-only forms serverless.yml uses: Equals, Not, And, Or, Condition), resources whose
 * Condition is false dropped, and every `Fn::If` replaced by its chosen branch. Refs, GetAtts and Subs stay
 * as they are: they name things only AWS knows.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface CfnResource {
  Type: string;
  Properties?: JsonObject;
  Condition?: string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  DependsOn?: string | string[];
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Conditions?: Record<string, Json>;
  Outputs?: Record<string, { Value: Json; Description?: string }>;
}

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const soleKey = (v: JsonObject): string | undefined => {
  const keys = Object.keys(v);
  return keys.length === 1 ? keys[0] : undefined;
};

export const evaluateConditions = (template: CfnTemplate): Record<string, boolean> => {
  const results: Record<string, boolean> = {};
  const evaluating = new Set<string>();
  const literal = (v: Json): string | number | boolean => {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
    throw new Error(`condition operand is not a literal: ${JSON.stringify(v)}`);
  };
  const evaluate = (v: Json): boolean => {
    if (!isObject(v)) throw new Error(`not a condition: ${JSON.stringify(v)}`);
    const fn = soleKey(v);
    const args = fn === undefined ? undefined : v[fn];
    if (fn === 'Condition' && typeof args === 'string') return byName(args);
    if (fn === 'Fn::Equals' && Array.isArray(args) && args.length === 2) return String(literal(args[0]!)) === String(literal(args[1]!));
    if (fn === 'Fn::Not' && Array.isArray(args) && args.length === 1) return !evaluate(args[0]!);
    if (fn === 'Fn::And' && Array.isArray(args)) return args.every(evaluate);
    if (fn === 'Fn::Or' && Array.isArray(args)) return args.some(evaluate);
    throw new Error(`unsupported condition: ${JSON.stringify(v)}`);
  };
  const byName = (name: string): boolean => {
    if (name in results) return results[name]!;
    const body = template.Conditions?.[name];
    if (body === undefined) throw new Error(`unknown condition ${name}`);
    if (evaluating.has(name)) throw new Error(`condition ${name} refers to itself`);
    evaluating.add(name);
    results[name] = evaluate(body);
    return results[name]!;
  };
  for (const name of Object.keys(template.Conditions ?? {})) byName(name);
  return results;
};

const resolveIfs = (v: Json, conditions: Record<string, boolean>): Json => {
  if (Array.isArray(v)) return v.map((x) => resolveIfs(x, conditions));
  if (!isObject(v)) return v;
  const args = v['Fn::If'];
  if (soleKey(v) === 'Fn::If' && Array.isArray(args) && args.length === 3 && typeof args[0] === 'string') {
    const chosen = conditions[args[0]];
    if (chosen === undefined) throw new Error(`Fn::If on unknown condition ${args[0]}`);
    return resolveIfs(chosen ? args[1]! : args[2]!, conditions);
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveIfs(x, conditions)]));
};

/** What CloudFormation would create from this template. */
export const deployedView = (template: CfnTemplate): CfnTemplate => {
  const conditions = evaluateConditions(template);
  const resources = Object.entries(template.Resources).filter(([, r]) => r.Condition === undefined || conditions[r.Condition] === true);
  return resolveIfs({
    Resources: Object.fromEntries(resources) as unknown as Json,
    Outputs: (template.Outputs ?? {}) as unknown as Json,
  } as Json, conditions) as unknown as CfnTemplate;
};

export const resourcesOfType = (template: CfnTemplate, type: string): [string, CfnResource][] =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type);

/** Every string anywhere under `v` (keys excluded), for "no wildcard anywhere" checks. */
export const stringsIn = (v: Json | undefined): string[] => {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(stringsIn);
  if (isObject(v)) return Object.values(v).flatMap(stringsIn);
  return [];
};
