// Structural diffs of two JSON values (flag and segment definitions, audit before/after states):
// both are rendered as stable YAML-like lines, the lines are diffed, and the result is shown
// with unchanged stretches collapsed. Everything but `DiffView` is a pure function.

import { html, useState } from './vendor/preact-htm.js';
import { isObject, same, plural } from './doc.js';

/** Scalar arrays shorter than this are written on one line, like `tags: [a, b]`. */
const INLINE_WIDTH = 60;
/** Upper bound on (lines × edit distance) explored by the diff, so a huge document cannot hang the tab. */
const DIFF_BUDGET = 4_000_000;
/** Changed lines shown before the rest of a diff is cut off. */
const MAX_SHOWN = 400;

// ---- Rendering values as lines ----

const PLAIN = /^[A-Za-z0-9_$@./+-]+( [A-Za-z0-9_$@./+-]+)*$/;
const LOOKS_TYPED = /^(true|false|null|~|[-+]?(\d[\d_]*)?\.?\d+([eE][-+]?\d+)?)$/i;

/** A string as YAML would need it: bare when unambiguous, JSON-quoted otherwise. */
function str(s) {
  return PLAIN.test(s) && !LOOKS_TYPED.test(s) && !s.startsWith('-') ? s : JSON.stringify(s);
}

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return str(v);
  return String(v);
}

function isScalar(v) {
  return v === null || typeof v !== 'object';
}

/** The one-line form of a value, or null when it needs several lines. */
function inline(v) {
  if (isScalar(v)) return scalar(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (!v.every(isScalar)) return null;
    const text = `[${v.map(scalar).join(', ')}]`;
    return text.length <= INLINE_WIDTH ? text : null;
  }
  return Object.keys(v).length === 0 ? '{}' : null;
}

function pushLines(out, v, indent) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      const one = inline(item);
      if (one !== null) {
        out.push(`${pad}- ${one}`);
        continue;
      }
      // Render the item two columns in, then turn its first line's indentation into "- ".
      const start = out.length;
      pushLines(out, item, indent + 2);
      out[start] = `${pad}- ${out[start].slice(indent + 2)}`;
    }
    return;
  }
  for (const [k, child] of Object.entries(v)) {
    const one = inline(child);
    if (one !== null) out.push(`${pad}${str(k)}: ${one}`);
    else {
      out.push(`${pad}${str(k)}:`);
      pushLines(out, child, indent + 2);
    }
  }
}

/**
 * A JSON value as YAML-like lines, keys in their given order. `null`/`undefined` (no value:
 * before a creation, after a deletion) gives no lines.
 */
export function toLines(value) {
  if (value === null || value === undefined) return [];
  const one = inline(value);
  if (one !== null) return [one];
  const out = [];
  pushLines(out, value, 0);
  return out;
}

// ---- Line diff ----

/**
 * Myers' O((N+M)·D) diff of two string arrays, or null when the edit distance exceeds `maxD`.
 * Keeps one snapshot of the frontier per step (O(D²) memory) to walk the path back.
 */
function myers(a, b, maxD) {
  const n = a.length;
  const m = b.length;
  const off = maxD + 1;
  const v = new Int32Array(2 * maxD + 3);
  const trace = [];
  for (let d = 0; d <= maxD; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        trace.push(v.slice(off - d, off + d + 1));
        return backtrack(trace, a, b);
      }
    }
    trace.push(v.slice(off - d, off + d + 1));
  }
  return null;
}

function backtrack(trace, a, b) {
  const ops = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d > 0; d--) {
    const prev = trace[d - 1];
    const at = (k) => prev[k + d - 1];
    const k = x - y;
    const pk = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const px = at(pk);
    const py = px - pk;
    while (x > px && y > py) {
      ops.push({ kind: 'same', text: a[--x] });
      y--;
    }
    if (x === px) ops.push({ kind: 'add', text: b[--y] });
    else ops.push({ kind: 'del', text: a[--x] });
  }
  while (x > 0) {
    ops.push({ kind: 'same', text: a[--x] });
    y--;
  }
  return ops.reverse();
}

/**
 * The line diff of `a` into `b`: a list of `{kind: 'same' | 'add' | 'del', text}`. Minimal when
 * the work fits the budget; otherwise the differing middle is shown as removed, then added.
 */
export function diffLines(a, b, budget = DIFF_BUDGET) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const size = midA.length + midB.length;
  const maxD = Math.min(size, Math.floor(budget / Math.max(size, 1)));
  const middle = myers(midA, midB, maxD) ?? [
    ...midA.map((text) => ({ kind: 'del', text })),
    ...midB.map((text) => ({ kind: 'add', text })),
  ];
  const same = (text) => ({ kind: 'same', text });
  return [...a.slice(0, start).map(same), ...middle, ...a.slice(endA).map(same)];
}

/**
 * Collapses unchanged stretches into `{kind: 'skip', lines: [...]}` items, keeping `context`
 * lines around every change; stretches that would hide fewer than three lines stay.
 */
export function collapse(ops, context = 3) {
  const out = [];
  let i = 0;
  while (i < ops.length) {
    if (ops[i].kind !== 'same') {
      out.push(ops[i++]);
      continue;
    }
    let j = i;
    while (j < ops.length && ops[j].kind === 'same') j++;
    const keepBefore = i === 0 ? 0 : context;
    const keepAfter = j === ops.length ? 0 : context;
    if (j - i - keepBefore - keepAfter >= 3) {
      out.push(...ops.slice(i, i + keepBefore));
      out.push({ kind: 'skip', lines: ops.slice(i + keepBefore, j - keepAfter) });
      out.push(...ops.slice(j - keepAfter, j));
    } else {
      out.push(...ops.slice(i, j));
    }
    i = j;
  }
  return out;
}

// ---- Summary ----

/** A flag definition with its `true`/`false` shorthand spelled out. */
function expand(def) {
  if (typeof def === 'boolean') return { serve: def ? 'on' : 'off' };
  return isObject(def) ? def : {};
}

/** The targeting of an environment entry (a variant name, `true`/`false`, or an object). */
function envTargeting(entry) {
  if (typeof entry === 'boolean') return { serve: entry ? 'on' : 'off' };
  if (typeof entry === 'string') return { serve: entry };
  return isObject(entry) ? entry : {};
}

/** `rollout` as a variant → percent map (`rollout: 5` is `{on: 5, off: 95}`). */
function rolloutMap(rollout) {
  return typeof rollout === 'number' ? { on: rollout, off: 100 - rollout } : isObject(rollout) ? rollout : {};
}

function describeDefault(t) {
  if ('rollout' in t) {
    const m = rolloutMap(t.rollout);
    if (typeof t.rollout === 'number') return `rollout on ${t.rollout}%`;
    return `rollout ${Object.entries(m).map(([k, w]) => `${k} ${w}%`).join(', ')}`;
  }
  if ('serve' in t) return `serve ${scalar(t.serve)}`;
  return 'serve the off variant';
}

/** "rollout on 5% → 25%" when only weights changed, else "serve on → rollout on 25%". */
function defaultChange(a, b, where) {
  if (same(a.rollout, b.rollout) && same(a.serve, b.serve)) return null;
  if ('rollout' in a && 'rollout' in b) {
    const ma = rolloutMap(a.rollout);
    const mb = rolloutMap(b.rollout);
    if (same(Object.keys(ma), Object.keys(mb))) {
      const changed = Object.keys(mb).filter((k) => ma[k] !== mb[k]);
      const shown = typeof a.rollout === 'number' && typeof b.rollout === 'number' ? ['on'] : changed;
      return `rollout${where} ${shown.map((k) => `${k} ${ma[k]}% → ${mb[k]}%`).join(', ')}`;
    }
  }
  return `${describeDefault(a)} → ${describeDefault(b)}${where}`;
}

function rulesChange(a = [], b = [], where) {
  if (same(a, b)) return null;
  if (!Array.isArray(a) || !Array.isArray(b)) return `rules changed${where}`;
  if (a.length !== b.length) {
    const n = b.length - a.length;
    return `${plural(Math.abs(n), 'rule')} ${n > 0 ? 'added' : 'removed'}${where}`;
  }
  const changed = b.map((r, i) => (same(r, a[i]) ? null : r?.name ? `"${r.name}"` : `${i + 1}`)).filter(Boolean);
  return changed.length === 1 ? `rule ${changed[0]} changed${where}` : `${plural(changed.length, 'rule')} changed${where}`;
}

/** Phrases for the targeting fields of one scope (flag level, or one environment's override). */
function targetingChanges(a, b, where) {
  const out = [];
  const onA = a.enabled !== false;
  const onB = b.enabled !== false;
  if (onA !== onB) out.push(`enabled${where} → ${onB ? 'on' : 'off'}`);
  const def = defaultChange(a, b, where);
  if (def) out.push(def);
  const rules = rulesChange(a.rules, b.rules, where);
  if (rules) out.push(rules);
  for (const field of ['targets', 'prerequisites', 'bucket_by', 'salt']) {
    if (!same(a[field], b[field])) out.push(`${field} changed${where}`);
  }
  return out;
}

const TARGETING = new Set(['enabled', 'serve', 'rollout', 'rules', 'targets', 'prerequisites', 'bucket_by', 'salt']);
const SHOWN_METADATA = new Set(['kind', 'owner', 'expires', 'off']);

function environmentChanges(a = {}, b = {}) {
  const out = [];
  const envs = [...new Set([...Object.keys(isObject(a) ? a : {}), ...Object.keys(isObject(b) ? b : {})])];
  for (const env of envs) {
    const ea = a?.[env];
    const eb = b?.[env];
    if (same(ea, eb)) continue;
    if (ea === undefined) out.push(`${env} override added`);
    else if (eb === undefined) out.push(`${env} override removed`);
    else out.push(...targetingChanges(envTargeting(ea), envTargeting(eb), ` in ${env}`));
  }
  return out;
}

/**
 * A one-line description of how a flag definition changed, for the common cases (default
 * serve/rollout, enabled per environment, rules added or removed, metadata), falling back to
 * "N lines changed" when nothing specific applies. `null` before means created, after deleted.
 */
export function summarize(before, after) {
  if (before === null || before === undefined) return after === null || after === undefined ? 'no change' : 'created';
  if (after === null || after === undefined) return 'deleted';
  if (same(before, after)) return 'no change';
  const phrases = [];
  if (isObject(before) || isObject(after) || typeof before === 'boolean' || typeof after === 'boolean') {
    const a = expand(before);
    const b = expand(after);
    phrases.push(...targetingChanges(a, b, ''));
    phrases.push(...environmentChanges(a.environments, b.environments));
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      if (TARGETING.has(k) || k === 'environments' || same(a[k], b[k])) continue;
      if (SHOWN_METADATA.has(k) && isScalar(a[k] ?? null) && isScalar(b[k] ?? null)) {
        phrases.push(`${k} ${a[k] === undefined ? '(none)' : scalar(a[k])} → ${b[k] === undefined ? '(none)' : scalar(b[k])}`);
      } else {
        phrases.push(`${k} changed`);
      }
    }
  }
  if (phrases.length === 0) {
    const changed = diffLines(toLines(before), toLines(after)).filter((op) => op.kind !== 'same').length;
    return plural(changed, 'line') + ' changed';
  }
  return phrases.length > 4 ? `${phrases.slice(0, 3).join('; ')}; and ${phrases.length - 3} more changes` : phrases.join('; ');
}

// ---- View ----

const SIGN = { add: '+', del: '−', same: ' ' };

function Line({ op }) {
  return html`<span class="diff-line ${op.kind}"><span class="diff-sign">${SIGN[op.kind]}</span>${op.text}</span>`;
}

function Skipped({ lines }) {
  const [open, setOpen] = useState(false);
  if (open) return lines.map((op, i) => html`<${Line} key=${i} op=${op} />`);
  return html`<button type="button" class="diff-skip" onClick=${() => setOpen(true)}>
    ⋯ ${plural(lines.length, 'unchanged line')} (show)
  </button>`;
}

/**
 * The diff of `before` into `after`: a one-line summary and the changed lines with a little
 * context. `summary` overrides the computed one (e.g. for a deletion).
 */
export function DiffView({ before, after, summary }) {
  const items = collapse(diffLines(toLines(before), toLines(after)));
  let changed = 0;
  const shown = [];
  for (const item of items) {
    if (item.kind === 'add' || item.kind === 'del') changed++;
    if (changed > MAX_SHOWN) break;
    shown.push(item);
  }
  const total = items.filter((i) => i.kind === 'add' || i.kind === 'del').length;
  return html`<div class="diff" data-test="diff">
    <p class="diff-summary">${summary ?? summarize(before, after)}</p>
    ${shown.length > 0 &&
    html`<pre class="diff-lines">${shown.map((item, i) =>
      item.kind === 'skip' ? html`<${Skipped} key=${i} lines=${item.lines} />` : html`<${Line} key=${i} op=${item} />`,
    )}</pre>`}
    ${total > MAX_SHOWN && html`<p class="diff-more">${plural(total - MAX_SHOWN, 'more changed line')} not shown.</p>`}
  </div>`;
}
