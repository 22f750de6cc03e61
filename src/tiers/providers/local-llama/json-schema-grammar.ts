import type { GbnfJsonSchema } from 'node-llama-cpp';

/**
 * JSON Schema → the subset node-llama-cpp turns into a grammar (GbnfJsonSchema), for structured
 * answers and tool arguments on the local tier. node-llama-cpp does not reject what it cannot
 * enforce: an unknown keyword is skipped and a schema it does not recognise becomes `null`. So every
 * keyword is read here, and what the grammar cannot hold (a `pattern`, a `minimum`) is reported
 * instead of dropped; the caller refuses a strict schema with such constraints and warns otherwise.
 * The grammar may be narrower than the schema (every property is written, `additionalProperties`
 * defaults to false), never wider: what it produces validates against the schema.
 */
export interface GrammarSchema {
  schema: GbnfJsonSchema;
  /** `path: keyword` of each constraint the grammar does not enforce. */
  unenforced: string[];
}

type Json = Record<string, unknown>;

// Annotations constrain nothing, so the grammar has nothing to enforce for them.
const ANNOTATIONS = new Set([
  'title',
  '$schema',
  '$id',
  '$comment',
  'examples',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
]);
const PRIMITIVES = new Set(['string', 'number', 'integer', 'boolean', 'null']);
const FORMATS = new Set(['date-time', 'time', 'date']);
/** What each kind of node may hold besides `type` and `description`; other keywords are not enforced. */
const KEYWORDS: Record<string, readonly string[]> = {
  object: ['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
  array: ['items', 'prefixItems', 'minItems', 'maxItems'],
  string: ['minLength', 'maxLength', 'format'],
  number: [],
  integer: [],
  boolean: [],
  null: [],
};

/** Any JSON value, in the subset (an array without `items` takes any items). */
const ANY: GbnfJsonSchema = {
  oneOf: [
    { type: ['string', 'number', 'boolean', 'null'] },
    { type: 'array' },
    { type: 'object', additionalProperties: true },
  ],
};

export function toGrammarSchema(schema: Json): GrammarSchema {
  const unenforced: string[] = [];
  const converted = convert(schema, '$', unenforced);
  return { schema: converted, unenforced };
}

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === 'object' && !Array.isArray(value);
const isPrimitive = (value: unknown) =>
  value === null || ['string', 'number', 'boolean'].includes(typeof value);

function convert(node: unknown, path: string, unenforced: string[]): GbnfJsonSchema {
  if (node === true) return ANY;
  if (!isObject(node)) {
    unenforced.push(`${path}: ${JSON.stringify(node)} is not a schema`);
    return ANY;
  }
  const described = typeof node.description === 'string' ? { description: node.description } : {};
  const rest = Object.keys(node).filter((k) => !ANNOTATIONS.has(k) && k !== 'description');
  const skip = (used: readonly string[]) => {
    for (const key of rest) if (!used.includes(key)) unenforced.push(`${path}: ${key}`);
  };
  const defs = convertDefs(node, path, unenforced);

  if (typeof node.$ref === 'string') {
    skip(['$ref', '$defs', 'definitions']);
    const ref = node.$ref.replace(/^#\/definitions\//, '#/$defs/');
    if (!ref.startsWith('#/$defs/')) unenforced.push(`${path}: $ref ${node.$ref} (only #/$defs/… is read)`);
    return { $ref: ref, ...described, ...defs } as GbnfJsonSchema;
  }
  const alternatives = node.anyOf ?? node.oneOf;
  if (Array.isArray(alternatives)) {
    // A grammar takes any branch that matches: anyOf exactly, oneOf where branches do not overlap.
    skip(['anyOf', 'oneOf', '$defs', 'definitions']);
    const key = node.anyOf ? 'anyOf' : 'oneOf';
    return {
      oneOf: alternatives.map((alt, i) => convert(alt, `${path}.${key}[${i}]`, unenforced)),
      ...described,
      ...defs,
    } as GbnfJsonSchema;
  }
  if ('const' in node) {
    skip(['const']);
    if (isPrimitive(node.const)) return { const: node.const as string, ...described };
    unenforced.push(`${path}: const (only strings, numbers, booleans and null)`);
    return ANY;
  }
  if (Array.isArray(node.enum)) {
    skip(['enum', 'type']);
    if (node.enum.every(isPrimitive)) return { enum: node.enum as string[], ...described };
    unenforced.push(`${path}: enum (only strings, numbers, booleans and null)`);
    return ANY;
  }
  const types = typeOf(node);
  if (types === undefined) {
    unenforced.push(`${path}: type ${JSON.stringify(node.type)}`);
    return ANY;
  }
  if (types.length === 0) {
    skip(['$defs', 'definitions']);
    return ANY;
  }
  if (types.length > 1 && types.some((t) => t === 'object' || t === 'array')) {
    // A union with containers: one branch per type, each with the keywords that apply to it.
    skip(['type', '$defs', 'definitions', ...types.flatMap((t) => KEYWORDS[t] ?? [])]);
    return {
      oneOf: types.map((type) => single(node, type, path, unenforced, false)),
      ...described,
      ...defs,
    } as GbnfJsonSchema;
  }
  if (types.length > 1) {
    skip(['type', '$defs', 'definitions']);
    return { type: types as Array<'string'>, ...described };
  }
  return { ...single(node, types[0]!, path, unenforced, true), ...described, ...defs } as GbnfJsonSchema;
}

/** The node's types: [] when it has none (any value), undefined when one is unknown. */
function typeOf(node: Json): string[] | undefined {
  if (node.type === undefined) return node.properties !== undefined ? ['object'] : [];
  const types: unknown[] = Array.isArray(node.type) ? node.type : [node.type];
  const known = (t: unknown) =>
    typeof t === 'string' && (PRIMITIVES.has(t) || t === 'object' || t === 'array');
  return types.every(known) ? (types as string[]) : undefined;
}

function single(
  node: Json,
  type: string,
  path: string,
  unenforced: string[],
  report: boolean,
): GbnfJsonSchema {
  if (report) {
    const allowed = ['type', '$defs', 'definitions', ...(KEYWORDS[type] ?? [])];
    for (const key of Object.keys(node)) {
      if (!ANNOTATIONS.has(key) && key !== 'description' && !allowed.includes(key))
        unenforced.push(`${path}: ${key}`);
    }
  }
  const num = (key: string) => (typeof node[key] === 'number' ? { [key]: node[key] } : {});
  switch (type) {
    case 'object': {
      const properties = isObject(node.properties) ? node.properties : {};
      const extra = node.additionalProperties;
      return {
        type: 'object',
        properties: Object.fromEntries(
          Object.entries(properties).map(([key, value]) => [
            key,
            convert(value, `${path}.${key}`, unenforced),
          ]),
        ),
        ...(extra === true || extra === false
          ? { additionalProperties: extra }
          : isObject(extra)
            ? { additionalProperties: convert(extra, `${path}.additionalProperties`, unenforced) }
            : {}),
        ...num('minProperties'),
        ...num('maxProperties'),
      } as GbnfJsonSchema;
    }
    case 'array': {
      if (node.items === false) unenforced.push(`${path}: items false`);
      return {
        type: 'array',
        ...(isObject(node.items) ? { items: convert(node.items, `${path}[]`, unenforced) } : {}),
        ...(Array.isArray(node.prefixItems)
          ? { prefixItems: node.prefixItems.map((item, i) => convert(item, `${path}[${i}]`, unenforced)) }
          : {}),
        ...num('minItems'),
        ...num('maxItems'),
      } as GbnfJsonSchema;
    }
    case 'string': {
      if (typeof node.format === 'string') {
        if (FORMATS.has(node.format)) return { type: 'string', format: node.format } as GbnfJsonSchema;
        unenforced.push(`${path}: format ${node.format}`);
      }
      return { type: 'string', ...num('minLength'), ...num('maxLength') } as GbnfJsonSchema;
    }
    default:
      return { type: type as 'number' };
  }
}

function convertDefs(
  node: Json,
  path: string,
  unenforced: string[],
): { $defs?: Record<string, GbnfJsonSchema> } {
  const defs = isObject(node.$defs) ? node.$defs : isObject(node.definitions) ? node.definitions : undefined;
  if (!defs) return {};
  return {
    $defs: Object.fromEntries(
      Object.entries(defs).map(([name, def]) => [name, convert(def, `${path}.$defs.${name}`, unenforced)]),
    ),
  };
}
