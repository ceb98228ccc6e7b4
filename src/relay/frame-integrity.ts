/**
 * What the relay checks must be what the upstream applies. Two ways a client could make them
 * differ, both closed here:
 *
 * - Duplicate keys. `JSON.parse` keeps the last of two equal keys; another parser (the
 *   upstream's) may keep the first. `{"role":"system","role":"user"}` would pass the relay's
 *   check as a user message and reach the model as a system one. A frame the relay parses
 *   (a guarded event, or any frame whose type could not be read from its prefix) is refused
 *   when it holds a key twice in one object, at any depth: the relay never re-serialises a
 *   frame (it forwards the client's bytes), so refusing is the only way to keep one reading.
 * - Type look-alikes. `"Session.Update"`, `"session.update "`, `"session.update\u0000"` are not
 *   guarded types, so they would skip the guard; an upstream that normalises types would apply
 *   them. A type that equals a guarded type after dropping case, whitespace, control and format
 *   characters (and Unicode compatibility forms) is refused.
 *
 * Events nested deeper than MAX_EVENT_DEPTH are refused too: no Realtime event comes close, and
 * the relay's recursive checks must not meet a stack overflow.
 */
import { createScanner } from 'jsonc-parser';
import type { ProtocolError } from './protocol-errors';

/** Deepest object/array nesting of a client event the relay reads (an event's own object is depth 1). */
export const MAX_EVENT_DEPTH = 64;

// jsonc-parser's SyntaxKind values; its typings declare them as a `const enum`, which
// `isolatedModules` cannot read from a declaration file.
const OPEN_BRACE = 1;
const CLOSE_BRACE = 2;
const OPEN_BRACKET = 3;
const CLOSE_BRACKET = 4;
const COMMA = 5;
const STRING = 10;
const EOF = 17;

interface ObjectLevel {
  keys: Set<string>;
  /** The next string token is a key (after `{` or `,`). */
  expectKey: boolean;
  /** Path of this object, for the error's `param`. */
  path: string;
  /** Key whose value is being read, for the path of nested values. */
  lastKey: string;
}
interface ArrayLevel {
  keys: null;
  path: string;
  index: number;
}
type Level = ObjectLevel | ArrayLevel;

export type IntegrityProblem = { kind: 'duplicate_key'; param: string } | { kind: 'too_deep' };

/**
 * Scans the JSON text once, without recursion (a frame nested thousands deep must not overflow
 * the stack), for a key repeated within one object or nesting deeper than `maxDepth`. Keys are
 * compared after unescaping, so `"typ\u0065"` is the same key as `"type"`. The text is expected
 * to be valid JSON (the caller parsed it already).
 */
export function findIntegrityProblem(text: string, maxDepth = MAX_EVENT_DEPTH): IntegrityProblem | null {
  const scanner = createScanner(text, true);
  const stack: Level[] = [];
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    if (top.keys === null) return `${top.path}[${top.index}]`;
    return top.path ? `${top.path}.${top.lastKey}` : top.lastKey;
  };
  for (let kind = scanner.scan(); kind !== EOF; kind = scanner.scan()) {
    const top = stack[stack.length - 1];
    switch (kind) {
      case OPEN_BRACE:
      case OPEN_BRACKET: {
        if (stack.length >= maxDepth) return { kind: 'too_deep' };
        const path = childPath();
        stack.push(kind === OPEN_BRACE ? { keys: new Set(), expectKey: true, path, lastKey: '' } : { keys: null, path, index: 0 });
        break;
      }
      case CLOSE_BRACE:
      case CLOSE_BRACKET:
        stack.pop();
        break;
      case COMMA:
        if (top?.keys) top.expectKey = true;
        else if (top) top.index++;
        break;
      case STRING:
        if (top?.keys && top.expectKey) {
          const key = scanner.getTokenValue();
          top.expectKey = false;
          top.lastKey = key;
          if (top.keys.has(key)) return { kind: 'duplicate_key', param: top.path ? `${top.path}.${key}` : key };
          top.keys.add(key);
        }
        break;
    }
  }
  return null;
}

/** The `error` the client gets instead of the frame being forwarded. */
export function integrityError(problem: IntegrityProblem): ProtocolError {
  if (problem.kind === 'too_deep') {
    return {
      type: 'invalid_request_error',
      code: 'nesting_too_deep',
      message: `The event is nested deeper than ${MAX_EVENT_DEPTH} levels; no Realtime event needs that.`,
    };
  }
  return {
    type: 'invalid_request_error',
    code: 'duplicate_key',
    message: `The event holds the key '${problem.param}' more than once; parsers disagree on which one counts, so the relay does not forward it.`,
    param: problem.param,
  };
}

/** Only `a-z 0-9 . _` occur in protocol event types; a type made of them alone cannot be a look-alike. */
function isPlainType(type: string): boolean {
  for (let i = 0; i < type.length; i++) {
    const c = type.charCodeAt(i);
    // a-z, 0-9, '.', '_'
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f)) return false;
  }
  return true;
}
/** Whitespace, control and invisible format characters (zero-width space, BOM, bidi marks…). */
const INVISIBLE = /[\p{White_Space}\p{Cc}\p{Cf}\p{Z}]/gu;

function fold(type: string): string {
  // Upper then lower case folds the odd letters that lower case alone keeps apart (`ſ` → `S` → `s`).
  return type.normalize('NFKC').replace(INVISIBLE, '').toUpperCase().toLowerCase();
}

/**
 * Recognises types that are not a guarded type but would read as one to a lenient parser.
 * Cheap on the hot path: an ordinary lowercase type is answered by one regular-expression test.
 */
export class GuardedTypeLookalikes {
  private readonly folded: Map<string, string>;

  constructor(guarded: Iterable<string>) {
    this.folded = new Map([...guarded].map((t) => [fold(t), t]));
  }

  /** The last type found plain: audio appends repeat one type, and one comparison answers them. */
  private lastPlain = '';

  /** The guarded type `type` imitates, or null. Call only for types that are not guarded themselves. */
  imitated(type: string): string | null {
    if (this.folded.size === 0 || type === this.lastPlain) return null;
    if (isPlainType(type)) {
      this.lastPlain = type;
      return null;
    }
    return this.folded.get(fold(type)) ?? null;
  }
}

/** The `error` for a look-alike type. */
export function lookalikeError(type: string, imitated: string): ProtocolError {
  return {
    type: 'invalid_request_error',
    code: 'invalid_event_type',
    message: `Event type ${JSON.stringify(type)} is not '${imitated}'; event types are exact lowercase names, and the relay refuses near-misses of the events it checks.`,
    param: 'type',
  };
}
