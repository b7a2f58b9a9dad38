// Flags: the list (`#/flags`), the create form (`#/new`) and the flag page (`#/flags/KEY`,
// `…/settings`, `…/history`) with its kill switches, targeting editor and settings.
//
// The editors work on a copy of the flag's JSON definition and change only what the form
// touches, so fields the form does not show (`salt`, say) survive a save unchanged.

import { html, useState, useEffect, useRef, useCallback } from './vendor/preact-htm.js';
import { api, ApiError } from './api.js';
import {
  confirmDialog, notify, fmtTime, Badge, FieldError, Spinner, EmptyState, ErrorBox, Lazy, setLeaveGuard,
} from './ui.js';
import { KEY_RULE, OPS, NO_VALUE_OPS, CASE_OPS, isObject, same, plural } from './doc.js';

// ---------------------------------------------------------------------------------------------
// The flag definition (section 1 of the spec), read and changed as plain JSON

const KEY_HINT = '1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit';
const KINDS = ['release', 'experiment', 'ops', 'permission'];
const TARGETING_FIELDS = ['enabled', 'prerequisites', 'targets', 'rules', 'serve', 'rollout', 'bucket_by', 'salt'];
const SETTINGS_FIELDS = ['description', 'kind', 'owner', 'tags', 'created', 'expires', 'ticket', 'link', 'variants', 'off'];
const EXPIRING_DAYS = 14;
const PAGE_SIZE = 200;

const flagPath = (key) => `/api/v1/flags/${encodeURIComponent(key)}`;
const flagHref = (key, tab) => `#/flags/${encodeURIComponent(key)}${tab ? `/${tab}` : ''}`;
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const round3 = (n) => Math.round(n * 1000) / 1000;
// Environments that ask before a switch: any whose name says production (`production`, `prod`,
// `production-eu`, `eu-prod`), `prd` or `live`.
const isProduction = (env) => /prod/i.test(env) || /^(prd|live)$/i.test(env);
const splitList = (text) => text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);

function localDate(d = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function daysFromToday(n) {
  const d = new Date();
  d.setDate(d.getDate() + n);
  return localDate(d);
}

/** A definition as an object, the `true`/`false` shorthands spelled out, as a fresh copy. */
function asObject(def) {
  if (typeof def === 'boolean') return { serve: def ? 'on' : 'off' };
  if (!isObject(def)) return {};
  const copy = clone(def);
  resolveBooleanServes(copy);
  return copy;
}

/**
 * The variant a `true`/`false` names where a variant is expected: for boolean flags the one
 * with that value (as the engine reads it), whatever its name.
 */
function variantWithValue(def, value) {
  const found = Object.entries(variantsOf(def)).find(([, v]) => v === value);
  return found ? found[0] : value ? 'on' : 'off';
}

/** Rewrites `serve: true/false` and `ENV: true/false` as variant names, in place. */
function resolveBooleanServes(def) {
  const fix = (t) => {
    if (!isObject(t)) return;
    if (typeof t.serve === 'boolean') t.serve = variantWithValue(def, t.serve);
    if (Array.isArray(t.rules)) t.rules.forEach(fix);
  };
  fix(def);
  if (isObject(def.environments)) {
    for (const [env, entry] of Object.entries(def.environments)) {
      if (typeof entry === 'boolean') def.environments[env] = variantWithValue(def, entry);
      else fix(entry);
    }
  }
}

/** Variant name → value; a flag without `variants` is the boolean `{on: true, off: false}`. */
function variantsOf(def) {
  return isObject(def) && isObject(def.variants) ? def.variants : { on: true, off: false };
}

const variantNames = (def) => Object.keys(variantsOf(def));
const isBooleanFlag = (def) => Object.values(variantsOf(def)).every((v) => typeof v === 'boolean');

/** The variant served when the flag is disabled. */
function offVariant(def) {
  if (isObject(def) && typeof def.off === 'string') return def.off;
  const names = variantNames(def);
  return names.includes('off') ? 'off' : names[0];
}

/** An environment override as an object (a variant name or `true`/`false` spelled out). */
function overrideObject(entry, def) {
  if (typeof entry === 'string') return { serve: entry };
  if (typeof entry === 'boolean') return { serve: variantWithValue(def, entry) };
  return isObject(entry) ? entry : {};
}

function hasOverride(def, env) {
  return isObject(def) && isObject(def.environments) && def.environments[env] !== undefined;
}

/** The targeting that decides in `env`: the environment's override if it has one, else the flag level. */
function targetingIn(def, env) {
  if (typeof def === 'boolean') return { serve: def ? 'on' : 'off' };
  if (hasOverride(def, env)) return overrideObject(def.environments[env], def);
  return isObject(def) ? def : {};
}

/** Whether the flag is on in `env`, and a few words on what it serves there when on. */
function envState(def, env) {
  const t = targetingIn(def, env);
  return { on: t.enabled !== false, serves: describeTargeting(t, def) };
}

function describeTargeting(t, def) {
  const parts = [];
  if (Array.isArray(t.prerequisites) && t.prerequisites.length) parts.push('prerequisites');
  if (isObject(t.targets) && Object.values(t.targets).some((l) => Array.isArray(l) && l.length)) parts.push('targets');
  if (Array.isArray(t.rules) && t.rules.length) parts.push(plural(t.rules.length, 'rule'));
  parts.push(describeDefault(t, def));
  return parts.join(' + ');
}

function describeDefault(t, def) {
  if (t.rollout !== undefined) return describeRollout(t.rollout, def);
  if (typeof t.serve === 'boolean') return variantWithValue(def, t.serve);
  if (t.serve !== undefined) return String(t.serve);
  return offVariant(def);
}

function describeRollout(rollout, def) {
  if (typeof rollout === 'number') return `${rollout}% on`;
  if (!isObject(rollout)) return 'a rollout';
  if (isBooleanFlag(def) && Object.keys(rollout).every((k) => k === 'on' || k === 'off')) return `${rollout.on ?? 0}% on`;
  return Object.entries(rollout).filter(([, w]) => w > 0).map(([v, w]) => `${v} ${w}%`).join(', ');
}

/** Lifecycle badges from the metadata: expired, expiring soon, permanent. */
function lifecycle(def) {
  if (!isObject(def)) return [];
  const out = [];
  const today = localDate();
  if (typeof def.expires === 'string' && def.expires) {
    if (def.expires < today) {
      out.push({ kind: 'expired', label: 'expired', title: `Expired on ${def.expires}: remove it from the code, then archive it` });
    } else if (def.expires <= daysFromToday(EXPIRING_DAYS)) {
      out.push({ kind: 'expiring', label: 'expiring soon', title: `Expires on ${def.expires}` });
    }
  }
  if (def.kind === 'ops' || def.kind === 'permission') {
    out.push({ kind: 'permanent', label: 'permanent', title: `${def.kind} flags are meant to stay; they need no expiry date` });
  }
  return out;
}

const kindOf = (def) => (isObject(def) && typeof def.kind === 'string' ? def.kind : 'release');
const tagsOf = (def) => (isObject(def) && Array.isArray(def.tags) ? def.tags.map(String) : []);

/** Percentages per variant from a `rollout` (`N` for boolean flags means `{on: N, off: 100 - N}`). */
function weightsOf(rollout, names) {
  const w = {};
  for (const v of names) w[v] = isObject(rollout) && rollout[v] !== undefined ? rollout[v] : 0;
  if (typeof rollout === 'number') {
    w.on = rollout;
    w.off = round3(100 - rollout);
  }
  return w;
}

/** The `rollout` to write: the short `N` form stays when it was used and still says the same. */
function rolloutValue(weights, def, shortForm) {
  const onOff = Object.entries(weights).every(([k, w]) => k === 'on' || k === 'off' || w === 0);
  if (shortForm && isBooleanFlag(def) && onOff && typeof weights.on === 'number'
    && typeof weights.off === 'number' && round3(weights.on + weights.off) === 100) {
    return weights.on;
  }
  return weights;
}

/** A rollout giving everything to `variant`, in the form the flag's type suggests. */
function rolloutAllTo(variant, def, names) {
  if (isBooleanFlag(def) && names.includes('on') && names.includes('off') && names.length === 2) {
    return variant === 'on' ? 100 : 0;
  }
  const w = {};
  for (const v of names) w[v] = v === variant ? 100 : 0;
  return w;
}

/** The variant with the largest share of a rollout (for switching back to serving one). */
function largestShare(rollout, names) {
  const w = weightsOf(rollout, names);
  return names.reduce((best, v) => ((Number(w[v]) || 0) > (Number(w[best]) || 0) ? v : best), names[0]);
}

/** Renames a variant and every reference to it in this flag: off, serve, rollouts, targets. */
function renameVariant(def, from, to) {
  const renameKey = (obj) => {
    if (!isObject(obj) || !(from in obj)) return obj;
    const out = {};
    for (const [k, v] of Object.entries(obj)) out[k === from ? to : k] = v;
    return out;
  };
  const fixTargeting = (t) => {
    if (t.serve === from) t.serve = to;
    t.rollout = renameKey(t.rollout);
    t.targets = renameKey(t.targets);
    if (Array.isArray(t.rules)) {
      for (const r of t.rules) {
        if (!isObject(r)) continue;
        if (r.serve === from) r.serve = to;
        r.rollout = renameKey(r.rollout);
      }
    }
    for (const k of ['rollout', 'targets']) if (t[k] === undefined) delete t[k];
  };
  def.variants = renameKey(variantsOf(def));
  // A boolean flag's `off` defaults to the variant named "off"; keep pointing at it by name.
  if (def.off === from || (def.off === undefined && from === 'off')) def.off = to;
  fixTargeting(def);
  if (isObject(def.environments)) {
    for (const [env, entry] of Object.entries(def.environments)) {
      if (entry === from) def.environments[env] = to;
      else if (isObject(entry)) fixTargeting(entry);
    }
  }
}

/**
 * Three-way merge of `mine` and `theirs`, both changed from `base`, field by field (and
 * override by override): null when both changed the same field differently.
 */
function rebase(base, theirs, mine) {
  const merge = (b, t, m, nested) => {
    const out = {};
    for (const k of new Set([...Object.keys(t), ...Object.keys(m)])) {
      let v;
      if (k === nested) {
        const sub = merge(isObject(b[k]) ? b[k] : {}, isObject(t[k]) ? t[k] : {}, isObject(m[k]) ? m[k] : {});
        if (sub === null) return null;
        v = Object.keys(sub).length ? sub : undefined;
      } else if (same(m[k], b[k])) v = t[k];
      else if (same(t[k], b[k]) || same(t[k], m[k])) v = m[k];
      else return null;
      if (v !== undefined) out[k] = v;
    }
    return out;
  };
  return merge(asObject(base), asObject(theirs), asObject(mine), 'environments');
}

// ---------------------------------------------------------------------------------------------
// Validation errors: each detail goes to the field whose path is its longest prefix

const sub = (prefix, name) => (prefix ? `${prefix}.${name}` : name);
const under = (path, anchor) => path === anchor || path.startsWith(`${anchor}.`) || path.startsWith(`${anchor}[`);

/** `{at(anchor) → details placed there, rest → details no anchor on screen takes}`. */
function placeErrors(details, anchors) {
  const placed = new Map();
  const rest = [];
  for (const d of details) {
    const path = d.path || '';
    let best = null;
    for (const a of anchors) {
      if (a && under(path, a) && (best === null || a.length > best.length)) best = a;
    }
    if (best === null) rest.push(d);
    else placed.set(best, [...(placed.get(best) || []), d]);
  }
  return { at: (anchor) => placed.get(anchor) || [], rest };
}

const scopePath = (scope) => (scope === '*' ? '' : `environments.${scope}`);

/** The targeting fields being edited: the definition itself at flag level, else the override. */
function readTargeting(draft, scope) {
  if (scope === '*') return draft;
  return hasOverride(draft, scope) ? overrideObject(draft.environments[scope], draft) : null;
}

/** The same, inside a copy about to be changed, with a shorthand override spelled out first. */
function writableTargeting(copy, scope) {
  if (scope === '*') return copy;
  copy.environments[scope] = overrideObject(copy.environments[scope], copy);
  return copy.environments[scope];
}

/** Every path the targeting editor shows errors at, for the scope on screen. */
function targetingAnchors(draft, scope) {
  const p = scopePath(scope);
  const out = [p, ...TARGETING_FIELDS.map((f) => sub(p, f))];
  const t = readTargeting(draft, scope);
  if (!t) return out;
  (Array.isArray(t.prerequisites) ? t.prerequisites : []).forEach((_, i) => out.push(`${sub(p, 'prerequisites')}[${i}]`));
  for (const v of variantNames(draft)) out.push(sub(sub(p, 'targets'), v));
  (Array.isArray(t.rules) ? t.rules : []).forEach((r, i) => {
    const rp = `${sub(p, 'rules')}[${i}]`;
    out.push(rp);
    (isObject(r) && Array.isArray(r.when) ? r.when : []).forEach((_, j) => out.push(`${rp}.when[${j}]`));
  });
  return out;
}

function settingsAnchors(draft) {
  return [...SETTINGS_FIELDS, ...variantNames(draft).map((v) => `variants.${v}`)];
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** A list typed as text: comma separated, or one per line when `multiline`. */
function ListInput({ value, onChange, multiline = false, ...attrs }) {
  const list = Array.isArray(value) ? value.map(String) : [];
  const joiner = multiline ? '\n' : ', ';
  const [raw, setRaw] = useState(list.join(joiner));
  // Keep what is being typed (a trailing comma, an empty line) as long as it means the same list.
  useEffect(() => {
    if (!same(splitList(raw), list)) setRaw(list.join(joiner));
  }, [JSON.stringify(list)]);
  const onInput = (e) => {
    const text = e.currentTarget.value;
    setRaw(text);
    onChange(splitList(text));
  };
  return multiline
    ? html`<textarea ...${attrs} rows=${Math.min(8, Math.max(2, list.length + 1))} value=${raw} onInput=${onInput}></textarea>`
    : html`<input type="text" ...${attrs} value=${raw} onInput=${onInput} />`;
}

function parseOrUndefined(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

let nextFieldId = 1;

/** Stable keys for a list edited by position (items moved, removed, added at the end). */
function useListKeys(length) {
  const ref = useRef({ keys: [], next: 0 });
  const k = ref.current;
  while (k.keys.length < length) k.keys.push(k.next++);
  k.keys.length = length;
  return {
    keys: k.keys,
    move: (from, to) => k.keys.splice(to, 0, ...k.keys.splice(from, 1)),
    remove: (i) => k.keys.splice(i, 1),
  };
}

/**
 * A JSON value typed as text, with its own parse error. Only valid JSON reaches `onChange`;
 * `reportJson(fieldId, message | null)` tells the page whether there is text it must not save over.
 */
function JsonField({ value, onChange, reportJson, multiline = true, errorId, ...attrs }) {
  const fieldId = useRef(null);
  if (fieldId.current === null) fieldId.current = nextFieldId++;
  const onProblem = (message) => reportJson(fieldId.current, message);
  const format = (v) => (multiline && isObject(v) ? JSON.stringify(v, null, 2) : JSON.stringify(v)) ?? '';
  const [raw, setRaw] = useState(() => format(value));
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!same(parseOrUndefined(raw), value)) {
      setRaw(format(value));
      setError(null);
      onProblem(null);
    }
  }, [JSON.stringify(value)]);
  useEffect(() => () => onProblem(null), []);
  const onInput = (e) => {
    const text = e.currentTarget.value;
    setRaw(text);
    try {
      const v = JSON.parse(text);
      setError(null);
      onProblem(null);
      onChange(v);
    } catch (err) {
      const message = `Not valid JSON: ${err.message}. Text needs double quotes, like "blue".`;
      setError(message);
      onProblem(message);
    }
  };
  const common = { ...attrs, value: raw, onInput, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': error ? errorId : undefined };
  return html`
    ${multiline
      ? html`<textarea class="mono" rows=${Math.min(10, Math.max(2, raw.split('\n').length))} spellcheck="false" ...${common}></textarea>`
      : html`<input type="text" class="mono" spellcheck="false" ...${common} />`}
    ${error ? html`<div class="field-error" data-test="field-error" id=${errorId} role="alert">${error}</div>` : null}`;
}

/** Percentages per variant with a live sum. With two variants, changing one sets the other. */
function RolloutInputs({ names, weights, onChange, test, idPrefix, variants }) {
  const sum = round3(names.reduce((s, v) => s + (typeof weights[v] === 'number' ? weights[v] : 0), 0));
  const complete = names.every((v) => typeof weights[v] === 'number');
  const set = (v, text) => {
    const n = text.trim() === '' ? NaN : Number(text);
    const next = {};
    for (const x of names) next[x] = weights[x] ?? 0;
    // An unfinished number stays as typed; the server names it if it is saved that way.
    next[v] = Number.isFinite(n) ? n : text;
    if (names.length === 2 && Number.isFinite(n) && n >= 0 && n <= 100) {
      next[names.find((x) => x !== v)] = round3(100 - n);
    }
    onChange(next);
  };
  const ok = complete && sum === 100;
  return html`
    <div class="rollout">
      ${names.map((v) => html`
        <div class="field rollout-field" key=${v}>
          <label for=${`${idPrefix}-${v}`}><code>${v}</code></label>
          <div class="percent-input">
            <input id=${`${idPrefix}-${v}`} type="number" inputmode="decimal" min="0" max="100" step="any"
              data-test=${`${test}-${v}`} value=${weights[v] ?? 0} onInput=${(e) => set(v, e.currentTarget.value)} />
            <span aria-hidden="true">%</span>
          </div>
          <span class="muted rollout-value mono" title="The variant's value">${preview(variants[v])}</span>
        </div>`)}
      <p class=${`rollout-sum ${ok ? 'ok' : 'bad'}`} data-test=${`${test}-sum`} aria-live="polite">
        ${complete ? `Sums to ${sum}%` : 'Enter a percentage for every variant'}${complete && !ok ? ' — it must be 100%' : ''}
      </p>
    </div>`;
}

/** A short preview of a variant's value, for labels. */
function preview(value) {
  const text = JSON.stringify(value);
  if (text === undefined) return '';
  return text.length > 24 ? `${text.slice(0, 23)}…` : text;
}

function VariantSelect({ names, value, onChange, placeholder, ...attrs }) {
  const known = names.includes(value);
  return html`
    <select ...${attrs} value=${value ?? ''} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${!known ? html`<option value=${value ?? ''}>${value ? `${value} (not a variant)` : placeholder}</option>` : null}
      ${names.map((v) => html`<option key=${v} value=${v}>${v}</option>`)}
    </select>`;
}

// ---------------------------------------------------------------------------------------------
// Kill switch

/**
 * Turns the flag on or off in one environment. If someone changed the flag meanwhile, the
 * switch still means the same thing, so it is applied once more to the current version.
 */
async function switchEnvironment(record, env, on) {
  const path = `${flagPath(record.key)}/environments/${encodeURIComponent(env)}/${on ? 'enable' : 'disable'}`;
  try {
    return (await api('POST', path, { ifMatch: record.version })).data;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 412) throw e;
    const { data: fresh } = await api('GET', flagPath(record.key));
    if (envState(fresh.definition, env).on === on) return fresh;
    return (await api('POST', path, { ifMatch: fresh.version })).data;
  }
}

/** The on/off switch of a flag in one environment; production asks first. */
function EnvSwitch({ record, env, label, onChange }) {
  const { on, serves } = envState(record.definition, env);
  const [busy, setBusy] = useState(false);
  const flip = async () => {
    if (busy) return;
    const turnOn = !on;
    if (isProduction(env)) {
      const text = turnOn
        ? `Turn on "${record.key}" in ${env}? It will serve its targeting there: ${serves}.`
        : `Turn off "${record.key}" in ${env}? Everyone in ${env} will get its off variant "${offVariant(record.definition)}".`;
      const verb = turnOn ? `Turn on in ${env}` : `Turn off in ${env}`;
      if (!(await confirmDialog(text, { title: verb, yes: verb, no: 'Cancel', danger: !turnOn }))) return;
    }
    setBusy(true);
    try {
      const updated = await switchEnvironment(record, env, turnOn);
      onChange(updated);
      notify(`"${record.key}" is now ${turnOn ? 'on' : 'off'} in ${env}.`, 'success');
    } catch (e) {
      notify(`Could not turn "${record.key}" ${turnOn ? 'on' : 'off'} in ${env}: ${e.message}`, 'error');
    } finally {
      setBusy(false);
    }
  };
  // aria-disabled rather than disabled while busy, so keyboard focus stays on the switch.
  return html`
    <button type="button" role="switch" aria-checked=${on ? 'true' : 'false'} aria-label=${label}
      aria-disabled=${busy ? 'true' : undefined} class=${`switch ${on ? 'is-on' : 'is-off'}${busy ? ' is-busy' : ''}`}
      data-test=${`toggle-${env}`} onClick=${flip}>
      <span class="switch-track" aria-hidden="true"><span class="switch-knob"></span></span><span class="switch-text">${on ? 'On' : 'Off'}</span>
    </button>`;
}

function LifecycleBadges({ def }) {
  return lifecycle(def).map((b) => html`<${Badge} key=${b.kind} kind=${b.kind} test=${`badge-${b.kind}`} title=${b.title}>${b.label}<//>`);
}

// ---------------------------------------------------------------------------------------------
// The flag list

function matchesSearch(record, text) {
  if (!text) return true;
  const def = isObject(record.definition) ? record.definition : {};
  const hay = [record.key, def.description, def.owner, ...tagsOf(def)].filter(Boolean).join('\n').toLowerCase();
  return text.toLowerCase().split(/\s+/).filter(Boolean).every((word) => hay.includes(word));
}

function matchesState(record, filter) {
  if (!filter) return true;
  const at = filter.lastIndexOf(':');
  const env = filter.slice(0, at);
  return envState(record.definition, env).on === (filter.slice(at + 1) === 'on');
}

/** `#/flags`: every flag, its state in every environment, search and filters. */
export function FlagListPage({ route, environments }) {
  const [flags, setFlags] = useState(null);
  const [error, setError] = useState(null);
  const [search, setSearch] = useState(route.query.get('q') || '');
  const [tag, setTag] = useState(route.query.get('tag') || '');
  const [kind, setKind] = useState(route.query.get('kind') || '');
  const [state, setState] = useState(route.query.get('state') || '');
  // Rows drawn at once: a browser draws a few hundred rows instantly and 10,000 in seconds.
  const [shown, setShown] = useState(PAGE_SIZE);
  useEffect(() => setShown(PAGE_SIZE), [search, tag, kind, state]);

  const load = useCallback(async () => {
    setError(null);
    try {
      const { data } = await api('GET', '/api/v1/flags');
      setFlags([...data.flags].sort((a, b) => a.key.localeCompare(b.key)));
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    load();
  }, [load]);

  // The filters live in the address too, so a filtered list can be bookmarked or shared.
  useEffect(() => {
    const params = new URLSearchParams();
    if (search) params.set('q', search);
    if (tag) params.set('tag', tag);
    if (kind) params.set('kind', kind);
    if (state) params.set('state', state);
    const qs = params.toString();
    const hash = `#/flags${qs ? `?${qs}` : ''}`;
    if (location.hash !== hash && (qs || location.hash.startsWith('#/flags?'))) history.replaceState(null, '', hash);
  }, [search, tag, kind, state]);

  const replaceRecord = (updated) => setFlags((list) => list.map((f) => (f.key === updated.key ? updated : f)));
  const clearFilters = () => {
    setSearch('');
    setTag('');
    setKind('');
    setState('');
  };

  const allTags = flags ? [...new Set(flags.flatMap((f) => tagsOf(f.definition)))].sort() : [];
  const visible = (flags || []).filter((f) => matchesSearch(f, search.trim())
    && (!tag || tagsOf(f.definition).includes(tag))
    && (!kind || kindOf(f.definition) === kind)
    && matchesState(f, state));

  let body;
  if (error) body = html`<${ErrorBox} error=${error} onRetry=${load} title="Could not load the flags" />`;
  else if (!flags) body = html`<${Spinner} label="Loading flags…" />`;
  else if (!flags.length) {
    body = html`<${EmptyState} title="No flags yet"
      action=${html`<a class="btn btn-primary" href="#/new">Create your first flag</a>`}>
      <p>A flag lets you ship code dark and decide later, per environment, who gets the feature — without a deploy.</p>
      <p>Create one, then check it in your code, for example <code>client.is_enabled("new_checkout", &ctx)</code>.
        A new flag starts off in every environment; switch it on where you want it.</p>
    <//>`;
  } else if (!visible.length) {
    body = html`<${EmptyState} title="No flags match"
      action=${html`<button type="button" class="btn" onClick=${clearFilters}>Clear search and filters</button>`}>
      <p>Nothing matches the search and filters above.</p>
    <//>`;
  } else {
    body = html`
      <div class="table-wrap">
        <table class="flag-table">
          <thead>
            <tr>
              <th scope="col">Flag</th>
              <th scope="col">Kind</th>
              <th scope="col">Owner</th>
              <th scope="col">Tags</th>
              ${environments.map((env) => html`<th scope="col" key=${env}>${env}</th>`)}
            </tr>
          </thead>
          <tbody>
            ${visible.slice(0, shown).map((f) => html`<${FlagRow} key=${f.key} record=${f} environments=${environments} onChange=${replaceRecord} />`)}
          </tbody>
        </table>
      </div>
      ${visible.length > shown ? html`
        <div class="show-more">
          <p class="muted">Showing the first ${shown} of ${visible.length}. Search or filter to find a flag faster.</p>
          <button type="button" class="btn" data-test="show-more"
            onClick=${() => setShown((n) => n + PAGE_SIZE)}>Show ${Math.min(PAGE_SIZE, visible.length - shown)} more</button>
        </div>` : null}`;
  }

  return html`
    <section class="flag-list">
      <div class="page-head">
        <h1 class="page-title">Flags</h1>
        <a class="btn btn-primary" href="#/new" data-test="new-flag">New flag</a>
      </div>
      <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
        <div class="field field-grow">
          <label for="flag-search">Search</label>
          <input id="flag-search" type="search" data-test="flag-search" placeholder="Key, description, owner or tag"
            value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="filter-tag">Tag</label>
          <select id="filter-tag" data-test="filter-tag" value=${tag} onChange=${(e) => setTag(e.currentTarget.value)}>
            <option value="">Any tag</option>
            ${(tag && !allTags.includes(tag) ? [tag, ...allTags] : allTags).map((t) => html`<option key=${t} value=${t}>${t}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="filter-kind">Kind</label>
          <select id="filter-kind" data-test="filter-kind" value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}>
            <option value="">Any kind</option>
            ${KINDS.map((k) => html`<option key=${k} value=${k}>${k}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="filter-env">State</label>
          <select id="filter-env" data-test="filter-env" value=${state} onChange=${(e) => setState(e.currentTarget.value)}>
            <option value="">Any state</option>
            ${environments.map((env) => html`
              <option key=${`${env}:on`} value=${`${env}:on`}>On in ${env}</option>
              <option key=${`${env}:off`} value=${`${env}:off`}>Off in ${env}</option>`)}
          </select>
        </div>
      </form>
      ${flags && flags.length ? html`<p class="muted list-count" aria-live="polite">
        ${visible.length === flags.length ? plural(flags.length, 'flag') : `${visible.length} of ${plural(flags.length, 'flag')}`}</p>` : null}
      ${body}
    </section>`;
}

function FlagRow({ record, environments, onChange }) {
  const def = isObject(record.definition) ? record.definition : {};
  const tags = tagsOf(def);
  return html`
    <tr data-test="flag-row" data-flag=${record.key}>
      <td class="cell-flag">
        <a class="flag-link" href=${flagHref(record.key)}>${record.key}</a>
        <${LifecycleBadges} def=${def} />
        ${def.description ? html`<div class="flag-description muted">${def.description}</div>` : null}
      </td>
      <td data-label="Kind">${kindOf(def)}</td>
      <td data-label="Owner">${def.owner || html`<span class="muted">—</span>`}</td>
      <td data-label="Tags">${tags.length
        ? html`<span class="tags">${tags.map((t) => html`<span class="tag" key=${t}>${t}</span>`)}</span>`
        : html`<span class="muted">—</span>`}</td>
      ${environments.map((env) => {
        const { on, serves } = envState(record.definition, env);
        return html`
          <td key=${env} class="cell-state" data-label=${env} data-test=${`state-${env}`}>
            <${EnvSwitch} record=${record} env=${env} label=${`${record.key} in ${env}`} onChange=${onChange} />
            ${on ? html`<span class="state-serves">${serves}</span>` : null}
          </td>`;
      })}
    </tr>`;
}

// ---------------------------------------------------------------------------------------------
// Creating a flag

/** Starter variants for the non-boolean types; the user edits them in Settings. */
const STARTERS = {
  string: { control: 'control', treatment: 'treatment' },
  number: { control: 0, treatment: 1 },
  json: { control: { variant: 'control' }, treatment: { variant: 'treatment' } },
};

/**
 * A new flag's definition. It is created dark — disabled everywhere — so nothing changes for
 * anyone until someone switches an environment on; then it serves `on` (or `control`) there.
 */
function newDefinition(form) {
  const def = {};
  if (form.description.trim()) def.description = form.description.trim();
  def.kind = form.kind;
  if (form.owner.trim()) def.owner = form.owner.trim();
  const tags = splitList(form.tags);
  if (tags.length) def.tags = [...new Set(tags)];
  def.created = localDate();
  if (form.expires) def.expires = form.expires;
  if (form.type !== 'boolean') {
    def.variants = clone(STARTERS[form.type]);
    def.off = 'control';
  }
  def.enabled = false;
  def.serve = form.type === 'boolean' ? 'on' : 'control';
  return def;
}

const CREATE_FIELDS = ['key', 'description', 'kind', 'owner', 'tags', 'created', 'expires'];

/** `#/new`: the create form. */
export function CreateFlagPage() {
  const [form, setForm] = useState({ key: '', type: 'boolean', kind: 'release', description: '', owner: '', tags: '', expires: '' });
  const [errors, setErrors] = useState([]);
  const [formErrors, setFormErrors] = useState([]);
  const [busy, setBusy] = useState(false);
  const keyRef = useRef(null);

  // Editing a field clears what was said about it; the key is checked again as it is typed.
  const set = (field) => (e) => {
    const value = e.currentTarget.value;
    setForm((f) => ({ ...f, [field]: value }));
    setErrors((list) => {
      const others = list.filter((d) => d.path !== field && !d.path.startsWith(`${field}[`));
      const bad = field === 'key' && list.some((d) => d.path === 'key') && !KEY_RULE.test(value.trim());
      return bad ? [...others, { path: 'key', message: `Use ${KEY_HINT}.` }] : others;
    });
  };

  const submit = async (e) => {
    e.preventDefault();
    setErrors([]);
    setFormErrors([]);
    const key = form.key.trim();
    if (!KEY_RULE.test(key)) {
      setErrors([{ path: 'key', message: key ? `"${key}" is not a valid key: use ${KEY_HINT}.` : 'Give the flag a key: your code asks for the flag by this name.' }]);
      keyRef.current.focus();
      return;
    }
    setBusy(true);
    try {
      // Create only: if the key is taken (even by someone creating it this very moment) the
      // server answers 412 instead of replacing that flag.
      await api('PUT', flagPath(key), { body: newDefinition(form), ifNoneMatch: '*' });
      notify(form.type === 'boolean'
        ? `Created "${key}". It is off in every environment until you switch it on.`
        : `Created "${key}". It is off everywhere; set its variants in Settings.`, 'success');
      location.hash = flagHref(key);
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        setErrors([{ path: 'key', message: `There is already a flag "${key}". Pick another key, or open the existing flag.` }]);
        keyRef.current.focus();
      } else if (err instanceof ApiError && err.status === 400 && err.details.length) setErrors(err.details);
      else setFormErrors([err.message]);
    } finally {
      setBusy(false);
    }
  };

  const { at, rest } = placeErrors(errors, CREATE_FIELDS);
  const invalid = (path) => (at(path).length ? 'true' : undefined);
  return html`
    <section class="create-flag">
      <nav class="breadcrumb" aria-label="Breadcrumb"><a href="#/flags">Flags</a> <span aria-hidden="true">›</span> New flag</nav>
      <h1 class="page-title">New flag</h1>
      <form class="card form-grid" onSubmit=${submit} novalidate>
        <div class="field span-2">
          <label for="new-key">Key</label>
          <input id="new-key" ref=${keyRef} type="text" class="mono" data-test="new-key" autocomplete="off" spellcheck="false"
            required aria-invalid=${invalid('key')} aria-describedby="new-key-hint" value=${form.key} onInput=${set('key')} />
          <p class="hint" id="new-key-hint">What your code asks for, e.g. <code>new_checkout</code>. ${KEY_HINT}. It cannot be changed later.</p>
          <${FieldError} errors=${at('key')} />
        </div>
        <div class="field">
          <label for="new-type">Type</label>
          <select id="new-type" data-test="new-type" value=${form.type} onChange=${set('type')} aria-describedby="new-type-hint">
            <option value="boolean">boolean (on / off)</option>
            <option value="string">string</option>
            <option value="number">number</option>
            <option value="json">json (object)</option>
          </select>
          <p class="hint" id="new-type-hint">${form.type === 'boolean'
            ? 'Serves true (on) or false (off).'
            : 'Starts with two variants, control and treatment, that you edit in Settings.'}</p>
        </div>
        <div class="field">
          <label for="new-kind">Kind</label>
          <select id="new-kind" data-test="new-kind" value=${form.kind} onChange=${set('kind')} aria-describedby="new-kind-hint">
            ${KINDS.map((k) => html`<option key=${k} value=${k}>${k}</option>`)}
          </select>
          <p class="hint" id="new-kind-hint">${form.kind === 'ops' || form.kind === 'permission'
            ? 'Permanent: a kill switch or an entitlement that stays.'
            : 'Temporary: remove it from the code once the change is done.'}</p>
          <${FieldError} errors=${at('kind')} />
        </div>
        <div class="field span-2">
          <label for="new-description">Description</label>
          <input id="new-description" type="text" data-test="new-description" value=${form.description}
            aria-invalid=${invalid('description')} onInput=${set('description')} />
          <${FieldError} errors=${at('description')} />
        </div>
        <div class="field">
          <label for="new-owner">Owner</label>
          <input id="new-owner" type="text" data-test="new-owner" placeholder="team or person" value=${form.owner}
            aria-invalid=${invalid('owner')} onInput=${set('owner')} />
          <${FieldError} errors=${at('owner')} />
        </div>
        <div class="field">
          <label for="new-tags">Tags</label>
          <input id="new-tags" type="text" data-test="new-tags" placeholder="payments, checkout" value=${form.tags}
            aria-invalid=${invalid('tags')} aria-describedby="new-tags-hint" onInput=${set('tags')} />
          <p class="hint" id="new-tags-hint">Separated by commas.</p>
          <${FieldError} errors=${at('tags')} />
        </div>
        <div class="field">
          <label for="new-expires">Expires</label>
          <input id="new-expires" type="date" data-test="new-expires" value=${form.expires} min=${localDate()}
            aria-invalid=${invalid('expires')} aria-describedby="new-expires-hint" onInput=${set('expires')} />
          <p class="hint" id="new-expires-hint">When it should be gone from the code; <code>vexil lint</code> fails after this date.</p>
          <${FieldError} errors=${[...at('expires'), ...at('created')]} />
        </div>
        <div class="field">
          <span class="label">Created</span>
          <p class="static-value">${localDate()} (today)</p>
        </div>
        ${formErrors.length || rest.length ? html`<${FormErrors} messages=${formErrors} details=${rest} />` : null}
        <div class="form-actions span-2">
          <button type="submit" class="btn btn-primary" data-test="new-submit" disabled=${busy}>${busy ? 'Creating…' : 'Create flag'}</button>
          <a class="btn btn-ghost" href="#/flags">Cancel</a>
        </div>
      </form>
    </section>`;
}

/** Errors that belong to no field on screen (or to the request as a whole). */
function FormErrors({ messages = [], details = [], onScope }) {
  return html`
    <div class="form-errors span-2" data-test="form-errors" role="alert">
      <strong>${details.length ? 'The server did not accept this:' : 'That did not work:'}</strong>
      <ul>
        ${messages.map((m, i) => html`<li key=${`m${i}`}>${m}</li>`)}
        ${details.map((d, i) => {
          const env = /^environments\.([^.[]+)/.exec(d.path || '');
          return html`<li key=${`d${i}`}>${d.path ? html`<code>${d.path}</code>: ` : null}${d.message}
            ${env && onScope ? html` <button type="button" class="btn-link" onClick=${() => onScope(env[1])}>Show ${env[1]}'s targeting</button>` : null}</li>`;
        })}
      </ul>
    </div>`;
}

// ---------------------------------------------------------------------------------------------
// The flag page

const TABS = [
  { id: 'targeting', label: 'Targeting' },
  { id: 'settings', label: 'Settings' },
  { id: 'history', label: 'History' },
];

/** `#/flags/KEY[/settings|/history]`: header, kill switches, tabs. */
export function FlagPage({ flagKey, tab = 'targeting', environments }) {
  const [record, setRecord] = useState(null); // the newest version the page knows of
  const [base, setBase] = useState(null); // the version the draft started from
  const [draft, setDraft] = useState(null); // the edited copy of the definition
  const [loadError, setLoadError] = useState(null);
  const [errors, setErrors] = useState([]); // validation details from the last save
  const [formErrors, setFormErrors] = useState([]);
  const [saving, setSaving] = useState(false);
  const [comment, setComment] = useState('');
  const [jsonProblems, setJsonProblems] = useState({});
  const [scope, setScope] = useState('*');
  const [others, setOthers] = useState({ flags: new Map(), segments: [], error: null });

  // Event handlers registered once read the current state through this.
  const latest = useRef({});
  latest.current = { record, base, draft };

  const baseDef = base ? asObject(base.definition) : null;
  const dirty = Boolean(draft && baseDef && !same(draft, baseDef));
  const conflict = Boolean(record && base && record.version !== base.version);

  const load = useCallback(async () => {
    setLoadError(null);
    try {
      const { data } = await api('GET', flagPath(flagKey));
      setRecord(data);
      setBase(data);
      setDraft(asObject(data.definition));
      setErrors([]);
      setFormErrors([]);
    } catch (e) {
      setLoadError(e);
    }
  }, [flagKey]);

  useEffect(() => {
    load();
  }, [load]);

  // The pickers for prerequisites and segment conditions; the editor works without them.
  useEffect(() => {
    Promise.all([api('GET', '/api/v1/flags'), api('GET', '/api/v1/segments')])
      .then(([f, s]) => setOthers({
        flags: new Map(f.data.flags.map((r) => [r.key, r.definition])),
        // Segment records carry their name as `name`; `key`, as flag records have it, works too.
        segments: s.data.segments.map((r) => r.name ?? r.key).sort(),
        error: null,
      }))
      .catch((e) => setOthers((o) => ({ ...o, error: e })));
  }, [flagKey]);

  /** Takes a newer version from the server, carrying unsaved edits over when they do not collide. */
  const adopt = useCallback((fresh) => {
    const { base: b, draft: d } = latest.current;
    setRecord(fresh);
    if (!b || !d) return;
    const before = asObject(b.definition);
    if (same(d, before)) {
      setBase(fresh);
      setDraft(asObject(fresh.definition));
      return;
    }
    const merged = rebase(before, fresh.definition, d);
    if (merged) {
      setBase(fresh);
      setDraft(merged);
    }
    // Otherwise both changed the same field: the conflict banner lets the user decide.
  }, []);

  const refresh = useCallback(async () => {
    // Nothing shown yet, or an archived flag (restored from its history, say): load afresh.
    if (!latest.current.record) {
      load();
      return;
    }
    try {
      const { data } = await api('GET', flagPath(flagKey));
      adopt(data);
      setLoadError(null); // it may have been archived, then restored, meanwhile
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setLoadError(e);
      // Other failures leave the page as it is; the next action reports them.
    }
  }, [flagKey, adopt, load]);

  // Writes made elsewhere (a revert on the History tab, say) show up here.
  useEffect(() => {
    const onChanged = (e) => {
      const current = latest.current.record;
      if (e.detail.key !== flagKey || (current && e.detail.version === current.version)) return;
      refresh();
    };
    window.addEventListener('vexil:flag-changed', onChanged);
    return () => window.removeEventListener('vexil:flag-changed', onChanged);
  }, [flagKey, refresh]);

  // Coming back to Targeting or Settings from History shows the current version.
  const firstTab = useRef(true);
  useEffect(() => {
    if (firstTab.current) {
      firstTab.current = false;
      return;
    }
    if (tab !== 'history') refresh();
  }, [tab]);

  useEffect(() => {
    if (!dirty) return undefined;
    setLeaveGuard({
      message: `You have unsaved changes to "${flagKey}". Leave this page and lose them?`,
      allows: (path) => path[0] === 'flags' && path[1] === flagKey,
    });
    return () => setLeaveGuard(null);
  }, [dirty, flagKey]);

  // After a failed save, bring the first error into view.
  useEffect(() => {
    if (!errors.length && !formErrors.length) return;
    const first = document.querySelector('.flag-page [data-test=field-error], .flag-page [data-test=form-errors]');
    if (first) first.scrollIntoView({ block: 'center', behavior: 'smooth' });
  }, [errors, formErrors]);

  const update = useCallback((change) => {
    setDraft((d) => {
      const copy = clone(d);
      change(copy);
      return copy;
    });
  }, []);

  const reportJson = useCallback((id, message) => {
    setJsonProblems((p) => (p[id] === (message || undefined) ? p : { ...p, [id]: message || undefined }));
  }, []);

  const save = async () => {
    if (Object.values(jsonProblems).some(Boolean)) {
      setErrors([]);
      setFormErrors(['Some JSON on this page is not valid (see the message under it). Fix it before saving.']);
      return;
    }
    setSaving(true);
    setErrors([]);
    setFormErrors([]);
    try {
      const { data } = await api('PUT', flagPath(flagKey), { body: draft, ifMatch: base.version, comment: comment.trim() || undefined });
      setRecord(data);
      setBase(data);
      setDraft(asObject(data.definition));
      setComment('');
      notify(data.version === base.version ? 'Nothing to save: the flag already looks like this.' : `Saved "${flagKey}" (v${data.version}).`, 'success');
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        try {
          const { data } = await api('GET', flagPath(flagKey));
          setRecord(data);
          if (data.version === base.version) setFormErrors([e.message]);
        } catch (err) {
          setFormErrors([e.message, err.message]);
        }
      } else if (e instanceof ApiError && e.status === 404) {
        setFormErrors([`"${flagKey}" no longer exists: someone archived it while you were editing. Your edits are still on screen; restore the flag from its history to keep working on it.`]);
      } else if (e instanceof ApiError && e.status === 400 && e.details.length) {
        setErrors(e.details);
      } else {
        setFormErrors([e.message]);
      }
    } finally {
      setSaving(false);
    }
  };

  const discard = async () => {
    if (!(await confirmDialog('Discard your unsaved changes to this flag?', { title: 'Discard changes', yes: 'Discard changes', no: 'Keep editing', danger: true }))) return;
    setDraft(asObject(base.definition));
    setErrors([]);
    setFormErrors([]);
  };

  const reloadAfterConflict = () => {
    setBase(record);
    setDraft(asObject(record.definition));
    setErrors([]);
    setFormErrors([]);
  };

  const mergeAfterConflict = () => {
    const merged = rebase(base.definition, record.definition, draft);
    setBase(record);
    setDraft(merged);
    setFormErrors([]);
    notify(`Your edits now sit on top of version ${record.version}. Check them, then save.`, 'info');
  };

  const archive = async () => {
    const ok = await confirmDialog(
      `Archive "${flagKey}"? It stops existing for every environment: SDKs and evaluations get their caller's default. Its history is kept, and you can restore it from there.`,
      { title: 'Archive flag', yes: 'Archive flag', no: 'Cancel', danger: true },
    );
    if (!ok) return;
    try {
      await api('DELETE', flagPath(flagKey), { ifMatch: record.version, comment: comment.trim() || undefined });
      setLeaveGuard(null);
      location.hash = '#/flags';
      notify(html`<span>Archived "${flagKey}". You can restore it from <a href=${flagHref(flagKey, 'history')}>its history</a>.</span>`, 'success');
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        notify(`Someone changed "${flagKey}" meanwhile, so it was not archived. Look at the current version first.`, 'error');
        refresh();
      } else {
        notify(`Could not archive "${flagKey}": ${e.message}`, 'error');
      }
    }
  };

  // Which tab holds the unsaved changes (both, for a field neither shows).
  const changedIn = (fields) => dirty && fields.some((f) => !same(draft[f], baseDef[f]));
  const targetingChanged = changedIn([...TARGETING_FIELDS, 'environments']);
  const settingsChanged = changedIn(SETTINGS_FIELDS);
  const unsaved = {
    targeting: targetingChanged || (dirty && !settingsChanged),
    settings: settingsChanged || (dirty && !targetingChanged),
  };
  const tabs = html`
    <nav class="tabs" aria-label="Flag sections">
      ${TABS.map((t) => html`
        <a key=${t.id} class="tab" href=${flagHref(flagKey, t.id === 'targeting' ? '' : t.id)} data-test=${`tab-${t.id}`}
          aria-current=${tab === t.id ? 'page' : undefined}>${t.label}${unsaved[t.id] ? html`<span class="dot" title="Unsaved changes" aria-label="(unsaved changes)"></span>` : null}</a>`)}
      <a class="tab tab-try" href=${`#/playground?flag=${encodeURIComponent(flagKey)}`} data-test="try-it">Try it</a>
    </nav>`;

  if (loadError) {
    const gone = loadError instanceof ApiError && loadError.status === 404;
    // An archived flag still has its history, and that is where it is restored from.
    if (gone && tab === 'history') {
      return html`<div class="flag-page">
        <${Breadcrumb} flagKey=${flagKey} />
        <h1 class="page-title flag-key" data-test="flag-key">${flagKey}</h1>
        <${Lazy} key="history" id="history.js" load=${() => import('./history.js')} exportName="HistoryPage" props=${{ flagKey }} />
      </div>`;
    }
    return html`<div class="flag-page">
      <${Breadcrumb} flagKey=${flagKey} />
      ${gone
        ? html`<${EmptyState} title=${`No flag "${flagKey}"`}
            action=${html`<a class="btn" href=${flagHref(flagKey, 'history')}>See its history</a>`}>
            <p>It may have been archived; an archived flag is restored from its history.</p><//>`
        : html`<${ErrorBox} error=${loadError} onRetry=${load} title="Could not load the flag" />`}
    </div>`;
  }
  if (!record || !draft) return html`<${Spinner} label="Loading the flag…" />`;

  const placement = placeErrors(errors, tab === 'settings' ? settingsAnchors(draft) : targetingAnchors(draft, scope));
  const def = isObject(record.definition) ? record.definition : {};

  return html`
    <div class="flag-page">
      <${Breadcrumb} flagKey=${flagKey} />
      <header class="flag-header">
        <div class="flag-title">
          <h1 class="page-title flag-key" data-test="flag-key">${flagKey}</h1>
          <span class="version" data-test="flag-version" title="Version">v${record.version}</span>
          <${Badge} kind="neutral">${kindOf(def)}<//>
          <${LifecycleBadges} def=${def} />
        </div>
        ${def.description ? html`<p class="flag-description">${def.description}</p>` : null}
        <p class="muted flag-meta">
          ${def.owner ? html`<span>Owner <strong>${def.owner}</strong></span>` : null}
          ${tagsOf(def).map((t) => html`<span class="tag" key=${t}>${t}</span>`)}
          <span>Changed by ${record.updated_by} · ${fmtTime(record.updated_at)}</span>
        </p>
      </header>

      <section class="card env-switches" aria-labelledby="env-switches-title">
        <h2 class="section-title" id="env-switches-title">Environments</h2>
        <ul class="env-switch-list">
          ${environments.map((env) => {
            const { on, serves } = envState(record.definition, env);
            return html`<li key=${env} class="env-switch-row">
              <span class="env-name">${env}</span>
              <${EnvSwitch} record=${record} env=${env} label=${`${flagKey} in ${env}`} onChange=${adopt} />
              <span class="muted env-serves">${on ? `serves ${serves}` : `serves ${offVariant(record.definition)} (switched off)`}</span>
              ${hasOverride(record.definition, env) ? html`<${Badge} kind="info" title="This environment has targeting of its own">own targeting<//>` : null}
            </li>`;
          })}
        </ul>
      </section>

      ${tabs}

      ${conflict && tab !== 'history' ? html`
        <div class="conflict" data-test="conflict" role="alert">
          <p><strong>Someone else changed this flag (now version ${record.version}) while you were editing.</strong>
            ${dirty ? ' Your edits are still here, not saved.' : ''}</p>
          <div class="conflict-actions">
            <button type="button" class="btn" data-test="conflict-reload" onClick=${reloadAfterConflict}>
              ${dirty ? `Reload version ${record.version} (drops my edits)` : `Reload version ${record.version}`}</button>
            ${dirty && rebase(base.definition, record.definition, draft)
              ? html`<button type="button" class="btn" data-test="conflict-merge" onClick=${mergeAfterConflict}>Keep my edits on top of version ${record.version}</button>`
              : null}
            <a class="btn btn-ghost" href=${flagHref(flagKey, 'history')}>See what changed</a>
          </div>
        </div>` : null}

      ${tab === 'history'
        ? html`<${Lazy} key="history" id="history.js" load=${() => import('./history.js')} exportName="HistoryPage" props=${{ flagKey }} />`
        : html`
          ${tab === 'settings'
            ? html`<${SettingsTab} draft=${draft} update=${update} at=${placement.at} reportJson=${reportJson} />`
            : html`<${TargetingEditor} flagKey=${flagKey} draft=${draft} update=${update} scope=${scope} setScope=${setScope}
                environments=${environments} at=${placement.at} others=${others} reportJson=${reportJson} />`}
          ${formErrors.length || placement.rest.length
            ? html`<${FormErrors} messages=${formErrors} details=${placement.rest} onScope=${tab === 'settings' ? null : setScope} />`
            : null}
          <${SaveBar} dirty=${dirty} saving=${saving} conflict=${conflict} comment=${comment} setComment=${setComment}
            onSave=${save} onDiscard=${discard} test=${tab === 'settings' ? 'save-settings' : 'save'} />
          ${tab === 'settings' ? html`<${ArchiveSection} onArchive=${archive} />` : null}`}
    </div>`;
}

function Breadcrumb({ flagKey }) {
  return html`<nav class="breadcrumb" aria-label="Breadcrumb"><a href="#/flags">Flags</a> <span aria-hidden="true">›</span> ${flagKey}</nav>`;
}

function SaveBar({ dirty, saving, conflict, comment, setComment, onSave, onDiscard, test }) {
  return html`
    <div class=${`save-bar${dirty ? ' is-dirty' : ''}`}>
      <div class="field save-comment">
        <label for="save-comment">Comment <span class="muted">(optional, shown in the audit log)</span></label>
        <input id="save-comment" type="text" data-test="comment" maxlength="500" placeholder="Why this change?"
          value=${comment} onInput=${(e) => setComment(e.currentTarget.value)} />
      </div>
      <div class="save-actions">
        <span class="save-state muted" aria-live="polite">${conflict ? 'Resolve the conflict above first' : dirty ? 'Unsaved changes' : 'No changes'}</span>
        ${dirty ? html`<button type="button" class="btn btn-ghost" data-test="discard" onClick=${onDiscard}>Discard</button>` : null}
        <button type="button" class="btn btn-primary" data-test=${test} disabled=${!dirty || saving || conflict} onClick=${onSave}>
          ${saving ? 'Saving…' : 'Save'}</button>
      </div>
    </div>`;
}

// ---------------------------------------------------------------------------------------------
// The targeting editor: scope, enabled, prerequisites, targets, rules, default

function TargetingEditor({ flagKey, draft, update, scope, setScope, environments, at, others, reportJson }) {
  const p = scopePath(scope);
  const t = readTargeting(draft, scope);
  const names = variantNames(draft);
  const updateT = (change) => update((c) => change(writableTargeting(c, scope)));

  return html`
    <div class="targeting">
      ${others.error ? html`<p class="notice">The other flags and segments could not be loaded for the pickers below
        (${others.error.message}); names already in the rules are kept.</p>` : null}
      <${ScopePicker} draft=${draft} scope=${scope} setScope=${setScope} environments=${environments} update=${update} at=${at} />
      ${t ? html`
        <section class="card" aria-labelledby="enabled-title">
          <h2 class="section-title" id="enabled-title">Targeting</h2>
          <label class="field-check">
            <input type="checkbox" data-test="enabled" checked=${t.enabled !== false}
              onChange=${(e) => {
                const on = e.currentTarget.checked;
                updateT((tt) => {
                  if (on) delete tt.enabled;
                  else tt.enabled = false;
                });
              }} />
            Targeting is on
          </label>
          <p class="hint">When off, everyone gets the off variant "${offVariant(draft)}". The switches above do this per environment, right away; this box is saved with the rest.</p>
          <${FieldError} errors=${at(sub(p, 'enabled'))} />
        </section>
        <${Prerequisites} t=${t} updateT=${updateT} p=${p} at=${at} flagKey=${flagKey} others=${others} />
        <${Targets} t=${t} updateT=${updateT} p=${p} at=${at} names=${names} />
        <${Rules} key=${scope} t=${t} updateT=${updateT} p=${p} at=${at} draft=${draft} names=${names} others=${others} reportJson=${reportJson} />
        <${DefaultServe} t=${t} updateT=${updateT} p=${p} at=${at} draft=${draft} names=${names} />` : null}
    </div>`;
}

function ScopePicker({ draft, scope, setScope, environments, update, at }) {
  const own = environments.filter((e) => hasOverride(draft, e));
  const following = environments.filter((e) => !hasOverride(draft, e));
  // Overrides for environments the server no longer lists can still be opened (and removed).
  const extra = isObject(draft.environments) ? Object.keys(draft.environments).filter((e) => !environments.includes(e)) : [];
  const flagLevelOn = draft.enabled !== false;

  const addOverride = () => update((c) => {
    // The override starts as a copy of the flag level, so nothing changes until it is edited.
    const copy = {};
    for (const f of TARGETING_FIELDS) if (c[f] !== undefined) copy[f] = clone(c[f]);
    if (!isObject(c.environments)) c.environments = {};
    c.environments[scope] = copy;
  });
  const removeOverride = () => update((c) => {
    delete c.environments[scope];
    if (!Object.keys(c.environments).length) delete c.environments;
  });

  let explanation;
  if (scope === '*') {
    explanation = following.length
      ? `Applies in ${following.join(', ')}.${own.length ? ` ${own.join(', ')} ${own.length === 1 ? 'has' : 'have'} targeting of ${own.length === 1 ? 'its' : 'their'} own.` : ''}`
      : 'Every environment has targeting of its own, so the flag level applies nowhere right now.';
  } else if (hasOverride(draft, scope)) {
    explanation = `${scope} uses this targeting instead of the flag level.`;
  } else {
    explanation = `${scope} follows the flag-level targeting${flagLevelOn ? '' : ', which is switched off'}. Add an override to give it targeting of its own.`;
  }

  return html`
    <section class="card scope" aria-labelledby="scope-label">
      <div class="scope-row">
        <div class="field">
          <label for="scope" id="scope-label">Editing</label>
          <select id="scope" data-test="scope" value=${scope} onChange=${(e) => setScope(e.currentTarget.value)} aria-describedby="scope-hint">
            <option value="*">Flag level — every environment without an override</option>
            ${[...environments, ...extra].map((env) => html`<option key=${env} value=${env}>
              ${env} — ${hasOverride(draft, env) ? 'own targeting' : 'follows the flag level'}</option>`)}
          </select>
        </div>
        ${scope !== '*' && !hasOverride(draft, scope)
          ? html`<button type="button" class="btn" data-test="add-override" onClick=${addOverride}>Add override for ${scope}</button>` : null}
        ${scope !== '*' && hasOverride(draft, scope)
          ? html`<button type="button" class="btn btn-ghost" data-test="remove-override" onClick=${removeOverride}>Remove override</button>` : null}
      </div>
      <p class="hint" id="scope-hint">${explanation}</p>
      <${FieldError} errors=${at(scopePath(scope))} />
    </section>`;
}

function Prerequisites({ t, updateT, p, at, flagKey, others }) {
  const list = Array.isArray(t.prerequisites) ? t.prerequisites : [];
  const pp = sub(p, 'prerequisites');
  const keys = [...others.flags.keys()].filter((k) => k !== flagKey).sort();
  const setAt = (i, change) => updateT((tt) => change(tt.prerequisites[i]));
  const add = () => updateT((tt) => {
    const first = keys[0] || '';
    const item = { flag: first, variants: first ? requiredByDefault(others.flags.get(first)) : ['on'] };
    tt.prerequisites = [...(Array.isArray(tt.prerequisites) ? tt.prerequisites : []), item];
  });
  const remove = (i) => updateT((tt) => {
    tt.prerequisites.splice(i, 1);
    if (!tt.prerequisites.length) delete tt.prerequisites;
  });

  return html`
    <section class="card" aria-labelledby="prereq-title">
      <h2 class="section-title" id="prereq-title">Prerequisites</h2>
      <p class="hint">Other flags that must serve one of the given variants first; otherwise this flag serves its off variant.</p>
      ${list.map((pr, i) => {
        const item = isObject(pr) ? pr : {};
        const options = item.flag && !keys.includes(item.flag) ? [item.flag, ...keys] : keys;
        const theirVariants = others.flags.has(item.flag) ? variantNames(others.flags.get(item.flag)) : null;
        const chosen = Array.isArray(item.variants) ? item.variants.map(String) : ['on'];
        const toggleVariant = (v, checked) => setAt(i, (x) => {
          const now = Array.isArray(x.variants) ? x.variants : ['on'];
          x.variants = checked ? [...now.filter((y) => y !== v), v] : now.filter((y) => y !== v);
        });
        return html`
          <div class="prereq" key=${i} data-test="prerequisite" data-index=${i}>
            <div class="field">
              <label for=${`prereq-${i}-flag`}>Flag</label>
              <select id=${`prereq-${i}-flag`} data-test="prereq-flag" value=${item.flag ?? ''}
                onChange=${(e) => {
                  const flag = e.currentTarget.value;
                  const def = others.flags.get(flag);
                  setAt(i, (x) => {
                    x.flag = flag;
                    const vs = def === undefined ? [] : variantNames(def);
                    if (vs.length && !(Array.isArray(x.variants) ? x.variants : ['on']).every((v) => vs.includes(v))) {
                      x.variants = requiredByDefault(def);
                    }
                  });
                }}>
                ${!item.flag ? html`<option value="">Choose a flag</option>` : null}
                ${options.map((k) => html`<option key=${k} value=${k}>${k}</option>`)}
              </select>
            </div>
            ${theirVariants
              ? html`<fieldset class="field prereq-variants">
                  <legend>Must serve</legend>
                  ${theirVariants.map((v) => html`<label class="field-check" key=${v}>
                    <input type="checkbox" data-test=${`prereq-variant-${v}`} checked=${chosen.includes(v)}
                      onChange=${(e) => toggleVariant(v, e.currentTarget.checked)} /> ${v}</label>`)}
                </fieldset>`
              : html`<div class="field">
                  <label for=${`prereq-${i}-variants`}>Must serve (variants)</label>
                  <${ListInput} id=${`prereq-${i}-variants`} data-test="prereq-variants" value=${chosen}
                    onChange=${(vs) => setAt(i, (x) => { x.variants = vs; })} />
                </div>`}
            <button type="button" class="btn btn-ghost btn-small" data-test="remove-prerequisite"
              aria-label=${`Remove prerequisite ${item.flag || i + 1}`} onClick=${() => remove(i)}>Remove</button>
            <${FieldError} errors=${at(`${pp}[${i}]`)} />
          </div>`;
      })}
      <${FieldError} errors=${at(pp)} />
      <button type="button" class="btn btn-small" data-test="add-prerequisite" onClick=${add}>Add prerequisite</button>
    </section>`;
}

/** What a new prerequisite on flag `def` asks for: `on`, else its first variant that is not off. */
function requiredByDefault(def) {
  const names = variantNames(def);
  if (names.includes('on')) return ['on'];
  return [names.find((v) => v !== offVariant(def)) || names[0]];
}

function Targets({ t, updateT, p, at, names }) {
  const tp = sub(p, 'targets');
  const set = (variant, list) => updateT((tt) => {
    const targets = isObject(tt.targets) ? tt.targets : {};
    if (list.length) targets[variant] = list;
    else delete targets[variant];
    if (Object.keys(targets).length) tt.targets = targets;
    else delete tt.targets;
  });
  return html`
    <section class="card" aria-labelledby="targets-title">
      <h2 class="section-title" id="targets-title">Individual targets</h2>
      <p class="hint">Targeting keys (user, session or account ids) that always get a variant, one per line or separated by commas.</p>
      <div class="targets-grid">
        ${names.map((v) => html`
          <div class="field" key=${v}>
            <label for=${`targets-${v}`}>Serve <code>${v}</code> to</label>
            <${ListInput} multiline id=${`targets-${v}`} data-test=${`targets-${v}`} class="mono" spellcheck="false"
              value=${isObject(t.targets) ? t.targets[v] : []} onChange=${(list) => set(v, list)} />
            <${FieldError} errors=${at(sub(tp, v))} />
          </div>`)}
      </div>
      <${FieldError} errors=${at(tp)} />
    </section>`;
}

function Rules({ t, updateT, p, at, draft, names, others, reportJson }) {
  const rules = Array.isArray(t.rules) ? t.rules : [];
  const rp = sub(p, 'rules');
  // Rules have no identity of their own; these keys keep each rule's fields with it when moved.
  const ruleKeys = useListKeys(rules.length);
  const setRule = (i, change) => updateT((tt) => change(tt.rules[i]));
  const move = (i, by) => {
    ruleKeys.move(i, i + by);
    updateT((tt) => {
      const [r] = tt.rules.splice(i, 1);
      tt.rules.splice(i + by, 0, r);
    });
  };
  // Like every edit here, removing takes effect on Save, and Discard brings it back.
  const remove = (i) => {
    ruleKeys.remove(i);
    updateT((tt) => {
      tt.rules.splice(i, 1);
      if (!tt.rules.length) delete tt.rules;
    });
  };
  const add = () => updateT((tt) => {
    const on = names.find((v) => v !== offVariant(draft)) || names[0];
    tt.rules = [...(Array.isArray(tt.rules) ? tt.rules : []), { when: [{ attribute: '', op: 'in', values: [] }], serve: on }];
  });

  return html`
    <section class="card" aria-labelledby="rules-title">
      <h2 class="section-title" id="rules-title">Rules</h2>
      <p class="hint">Tried in order; the first rule whose conditions all hold decides.</p>
      <ol class="rules">
        ${rules.map((rule, i) => html`<${Rule} key=${ruleKeys.keys[i]} rule=${isObject(rule) ? rule : {}} i=${i} count=${rules.length}
          rp=${`${rp}[${i}]`} setRule=${(change) => setRule(i, change)} move=${move} remove=${remove} at=${at}
          draft=${draft} names=${names} segments=${others.segments} reportJson=${reportJson}
          bucketDefault=${t.bucket_by || 'targetingKey'} />`)}
      </ol>
      <${FieldError} errors=${at(rp)} />
      <button type="button" class="btn btn-small" data-test="add-rule" onClick=${add}>Add rule</button>
    </section>`;
}

function Rule({ rule, i, count, rp, setRule, move, remove, at, draft, names, segments, reportJson, bucketDefault }) {
  const when = Array.isArray(rule.when) ? rule.when : [];
  const condKeys = useListKeys(when.length);
  const mode = rule.rollout !== undefined ? 'rollout' : 'serve';
  const idp = `rule-${i}`;
  const setCond = (j, replace) => setRule((r) => {
    r.when[j] = replace(r.when[j]);
  });
  const addCond = () => setRule((r) => {
    r.when = [...(Array.isArray(r.when) ? r.when : []), { attribute: '', op: 'in', values: [] }];
  });
  const removeCond = (j) => {
    condKeys.remove(j);
    setRule((r) => {
      r.when.splice(j, 1);
    });
  };
  const setMode = (m) => setRule((r) => {
    if (m === 'rollout') {
      r.rollout = rolloutAllTo(r.serve ?? names[0], draft, names);
      delete r.serve;
    } else {
      r.serve = largestShare(r.rollout, names);
      delete r.rollout;
    }
  });

  return html`
    <li class="rule" data-test="rule" data-index=${i} aria-labelledby=${`${idp}-title`}>
      <div class="rule-head">
        <h3 class="rule-title" id=${`${idp}-title`}>Rule ${i + 1}</h3>
        <div class="field rule-name">
          <label for=${`${idp}-name`} class="sr-only">Name of rule ${i + 1}</label>
          <input id=${`${idp}-name`} type="text" data-test="rule-name" placeholder="Name (optional), e.g. staff"
            value=${rule.name ?? ''} onInput=${(e) => {
              const name = e.currentTarget.value;
              setRule((r) => {
                if (name) r.name = name;
                else delete r.name;
              });
            }} />
        </div>
        <div class="rule-actions">
          <button type="button" class="btn btn-ghost btn-small" data-test="rule-up" disabled=${i === 0}
            aria-label=${`Move rule ${i + 1} up`} onClick=${() => move(i, -1)}>↑</button>
          <button type="button" class="btn btn-ghost btn-small" data-test="rule-down" disabled=${i === count - 1}
            aria-label=${`Move rule ${i + 1} down`} onClick=${() => move(i, 1)}>↓</button>
          <button type="button" class="btn btn-ghost btn-small" data-test="remove-rule"
            aria-label=${`Remove rule ${i + 1}`} onClick=${() => remove(i)}>Remove</button>
        </div>
      </div>
      <p class="rule-label">${when.length ? 'If all of these hold:' : 'If (no conditions: everyone matches):'}</p>
      <ol class="conditions">
        ${when.map((cond, j) => html`<${Condition} key=${condKeys.keys[j]} cond=${cond} i=${i} j=${j} cp=${`${rp}.when[${j}]`}
          replace=${(replace) => setCond(j, replace)} remove=${() => removeCond(j)} at=${at} segments=${segments} reportJson=${reportJson} />`)}
      </ol>
      <button type="button" class="btn btn-small" data-test="add-condition" onClick=${addCond}>Add condition</button>
      <div class="rule-then">
        <div class="field">
          <label for=${`${idp}-mode`}>Then</label>
          <select id=${`${idp}-mode`} data-test="rule-mode" value=${mode} onChange=${(e) => setMode(e.currentTarget.value)}>
            <option value="serve">serve a variant</option>
            <option value="rollout">split by percentage</option>
          </select>
        </div>
        ${mode === 'serve'
          ? html`<div class="field">
              <label for=${`${idp}-serve`}>Variant</label>
              <${VariantSelect} id=${`${idp}-serve`} data-test="rule-serve" names=${names} value=${rule.serve} placeholder="Choose a variant"
                onChange=${(v) => setRule((r) => { r.serve = v; })} />
            </div>`
          : html`
            <${RolloutInputs} names=${names} variants=${variantsOf(draft)} weights=${weightsOf(rule.rollout, names)}
              test="rule-rollout" idPrefix=${`${idp}-rollout`}
              onChange=${(w) => setRule((r) => { r.rollout = rolloutValue(w, draft, typeof r.rollout === 'number'); })} />
            <div class="field">
              <label for=${`${idp}-bucket`}>Bucket by</label>
              <input id=${`${idp}-bucket`} type="text" class="mono" data-test="rule-bucket-by" placeholder=${bucketDefault}
                value=${rule.bucket_by ?? ''} onInput=${(e) => {
                  const attr = e.currentTarget.value.trim();
                  setRule((r) => {
                    if (attr) r.bucket_by = attr;
                    else delete r.bucket_by;
                  });
                }} />
            </div>`}
      </div>
      <${FieldError} errors=${at(rp)} />
    </li>`;
}

/** How the form shows a condition: as fields, or as JSON when fields could not show it faithfully. */
function conditionKind(c) {
  if (!isObject(c)) return 'json';
  const keys = Object.keys(c);
  if (keys.length === 1 && typeof c.segment === 'string') return 'segment';
  const attributeShaped = typeof c.attribute === 'string'
    && keys.every((k) => ['attribute', 'op', 'values', 'value', 'ignore_case'].includes(k))
    && (c.op === undefined || OPS.includes(c.op))
    && (c.ignore_case === undefined || typeof c.ignore_case === 'boolean');
  return attributeShaped && formValues(c) !== null ? 'attribute' : 'json';
}

/** A condition's values as the comma-separated field shows them, or null if it cannot. */
function formValues(c) {
  const values = c.values !== undefined ? c.values : c.value !== undefined ? [c.value] : [];
  if (!Array.isArray(values) || !values.every((v) => ['string', 'number', 'boolean'].includes(typeof v))) return null;
  const texts = values.map(String);
  // A regular expression is one value; commas inside it are part of it.
  if (c.op === 'matches') return texts.length <= 1 ? texts : null;
  return texts.every((s) => s !== '' && s === s.trim() && !s.includes(',')) ? texts : null;
}

function Condition({ cond, i, j, cp, replace, remove, at, segments, reportJson }) {
  const [asJson, setAsJson] = useState(false);
  const kind = asJson ? 'json' : conditionKind(cond);
  const idp = `rule-${i}-cond-${j}`;
  const c = isObject(cond) ? cond : {};
  const change = (edit) => replace((old) => {
    const copy = clone(old);
    edit(copy);
    return copy;
  });

  const setKind = (k) => {
    setAsJson(k === 'json');
    if (k === 'attribute' && conditionKind(cond) !== 'attribute') replace(() => ({ attribute: '', op: 'in', values: [] }));
    if (k === 'segment' && conditionKind(cond) !== 'segment') replace(() => ({ segment: segments[0] || '' }));
  };
  const setOp = (op) => change((x) => {
    x.op = op;
    if (NO_VALUE_OPS.has(op)) {
      delete x.values;
      delete x.value;
    } else if (x.values === undefined && x.value === undefined) x.values = [];
    if (!CASE_OPS.has(op)) delete x.ignore_case;
  });
  const setValues = (list) => change((x) => {
    // `before`/`after` read numbers as Unix seconds, so numbers typed there stay numbers.
    x.values = x.op === 'before' || x.op === 'after' ? list.map((s) => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s)) : list;
    delete x.value;
  });

  let fields;
  if (kind === 'segment') {
    const options = c.segment && !segments.includes(c.segment) ? [c.segment, ...segments] : segments;
    fields = html`
      <div class="field field-grow">
        <label for=${`${idp}-segment`}>Is in segment</label>
        <select id=${`${idp}-segment`} data-test="cond-segment" value=${c.segment ?? ''}
          onChange=${(e) => {
            const segment = e.currentTarget.value;
            replace(() => ({ segment }));
          }}>
          ${!c.segment ? html`<option value="">Choose a segment</option>` : null}
          ${options.map((s) => html`<option key=${s} value=${s}>${s}</option>`)}
        </select>
        ${!segments.length ? html`<p class="hint">No segments yet: create them under <a href="#/segments">Segments</a>.</p>` : null}
      </div>`;
  } else if (kind === 'attribute') {
    const op = c.op ?? 'in';
    const values = formValues(c);
    fields = html`
      <div class="field">
        <label for=${`${idp}-attr`}>Attribute</label>
        <input id=${`${idp}-attr`} type="text" class="mono" data-test="cond-attribute" placeholder="email, plan, $now…" spellcheck="false"
          value=${c.attribute ?? ''} onInput=${(e) => {
            const attribute = e.currentTarget.value;
            change((x) => { x.attribute = attribute; });
          }} />
      </div>
      <div class="field">
        <label for=${`${idp}-op`}>Operator</label>
        <select id=${`${idp}-op`} data-test="cond-op" value=${op} onChange=${(e) => setOp(e.currentTarget.value)}>
          ${OPS.map((o) => html`<option key=${o} value=${o}>${o}</option>`)}
        </select>
      </div>
      ${NO_VALUE_OPS.has(op) ? null : html`
        <div class="field field-grow">
          <label for=${`${idp}-values`}>${op === 'matches' ? 'Regular expression' : 'Values (comma separated)'}</label>
          ${op === 'matches'
            ? html`<input id=${`${idp}-values`} type="text" class="mono" data-test="cond-values" spellcheck="false"
                value=${values[0] ?? ''} onInput=${(e) => {
                  const re = e.currentTarget.value;
                  change((x) => {
                    x.values = re === '' ? [] : [re];
                    delete x.value;
                  });
                }} />`
            : html`<${ListInput} id=${`${idp}-values`} class="mono" data-test="cond-values" spellcheck="false"
                value=${values} onChange=${setValues} />`}
        </div>`}
      ${CASE_OPS.has(op) ? html`
        <label class="field-check">
          <input type="checkbox" data-test="cond-ignore-case" checked=${c.ignore_case === true}
            onChange=${(e) => {
              const on = e.currentTarget.checked;
              change((x) => {
                if (on) x.ignore_case = true;
                else delete x.ignore_case;
              });
            }} />
          Ignore case
        </label>` : null}`;
  } else {
    fields = html`
      <div class="field field-grow">
        <label for=${`${idp}-json`}>Condition as JSON <span class="muted">(not / any / all, or anything the fields cannot show)</span></label>
        <${JsonField} id=${`${idp}-json`} data-test="cond-json" errorId=${`${idp}-json-error`} value=${cond}
          onChange=${(v) => replace(() => v)} reportJson=${reportJson} />
      </div>`;
  }

  return html`
    <li class="condition" data-test="condition" data-index=${j}>
      <div class="condition-fields">
        <div class="field">
          <label for=${`${idp}-kind`}>Condition</label>
          <select id=${`${idp}-kind`} data-test="cond-kind" value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}>
            <option value="attribute">attribute</option>
            <option value="segment">segment</option>
            <option value="json">JSON</option>
          </select>
        </div>
        ${fields}
        <button type="button" class="btn btn-ghost btn-small cond-remove" data-test="remove-condition"
          aria-label=${`Remove condition ${j + 1} of rule ${i + 1}`} onClick=${remove}>Remove</button>
      </div>
      <${FieldError} errors=${at(cp)} />
    </li>`;
}

function DefaultServe({ t, updateT, p, at, draft, names }) {
  const mode = t.rollout !== undefined ? 'rollout' : 'serve';
  const setMode = (m) => updateT((tt) => {
    if (m === 'rollout') {
      tt.rollout = rolloutAllTo(tt.serve ?? offVariant(draft), draft, names);
      delete tt.serve;
    } else {
      tt.serve = largestShare(tt.rollout, names);
      delete tt.rollout;
    }
  });
  const errors = ['serve', 'rollout', 'bucket_by', 'salt'].flatMap((f) => at(sub(p, f)));
  return html`
    <section class="card" aria-labelledby="default-title">
      <h2 class="section-title" id="default-title">Default</h2>
      <p class="hint">What everyone gets whom no target or rule above decides.</p>
      <div class="default-row">
        <div class="field">
          <label for="default-mode">Serve</label>
          <select id="default-mode" data-test="default-mode" value=${mode} onChange=${(e) => setMode(e.currentTarget.value)}>
            <option value="serve">one variant to everyone</option>
            <option value="rollout">a percentage rollout</option>
          </select>
        </div>
        ${mode === 'serve' ? html`
          <div class="field">
            <label for="default-serve">Variant</label>
            <${VariantSelect} id="default-serve" data-test="default-serve" names=${names} value=${t.serve ?? offVariant(draft)}
              placeholder="Choose a variant" onChange=${(v) => updateT((tt) => { tt.serve = v; })} />
            ${t.serve === undefined ? html`<p class="hint">Not set: the off variant is served.</p>` : null}
          </div>` : null}
      </div>
      ${mode === 'rollout' ? html`
        <${RolloutInputs} names=${names} variants=${variantsOf(draft)} weights=${weightsOf(t.rollout, names)}
          test="default-rollout" idPrefix="default-rollout"
          onChange=${(w) => updateT((tt) => { tt.rollout = rolloutValue(w, draft, typeof tt.rollout === 'number'); })} />
        <div class="field bucket-field">
          <label for="default-bucket">Bucket by</label>
          <input id="default-bucket" type="text" class="mono" data-test="default-bucket-by" placeholder="targetingKey"
            aria-describedby="default-bucket-hint" value=${t.bucket_by ?? ''} onInput=${(e) => {
              const attr = e.currentTarget.value.trim();
              updateT((tt) => {
                if (attr) tt.bucket_by = attr;
                else delete tt.bucket_by;
              });
            }} />
          <p class="hint" id="default-bucket-hint">The attribute that keeps a user in the same bucket, e.g. account_id. Raising a percentage keeps everyone who was already in.</p>
        </div>` : null}
      <${FieldError} errors=${errors} />
    </section>`;
}

// ---------------------------------------------------------------------------------------------
// Settings: metadata, variants, archive

function SettingsTab({ draft, update, at, reportJson }) {
  const setField = (field) => (e) => {
    const value = e.currentTarget.value;
    update((c) => {
      if (value.trim() === '') delete c[field];
      else c[field] = value;
    });
  };
  const text = (field, label, attrs = {}) => html`
    <div class="field">
      <label for=${`set-${field}`}>${label}</label>
      <input id=${`set-${field}`} type="text" data-test=${`set-${field}`} value=${draft[field] ?? ''}
        aria-invalid=${at(field).length ? 'true' : undefined} onInput=${setField(field)} ...${attrs} />
      <${FieldError} errors=${at(field)} />
    </div>`;

  return html`
    <div class="settings">
      <section class="card form-grid" aria-labelledby="meta-title">
        <h2 class="section-title span-2" id="meta-title">Details</h2>
        <div class="field span-2">
          <label for="set-description">Description</label>
          <textarea id="set-description" data-test="set-description" rows="2" value=${draft.description ?? ''}
            onInput=${setField('description')}></textarea>
          <${FieldError} errors=${at('description')} />
        </div>
        <div class="field">
          <label for="set-kind">Kind</label>
          <select id="set-kind" data-test="set-kind" value=${kindOf(draft)} onChange=${setField('kind')}>
            ${KINDS.map((k) => html`<option key=${k} value=${k}>${k}</option>`)}
          </select>
          <${FieldError} errors=${at('kind')} />
        </div>
        ${text('owner', 'Owner')}
        <div class="field">
          <label for="set-tags">Tags <span class="muted">(comma separated)</span></label>
          <${ListInput} id="set-tags" data-test="set-tags" value=${tagsOf(draft)}
            onChange=${(list) => update((c) => {
              if (list.length) c.tags = list;
              else delete c.tags;
            })} />
          <${FieldError} errors=${at('tags')} />
        </div>
        ${text('ticket', 'Ticket', { placeholder: 'PAY-1234' })}
        ${text('created', 'Created', { type: 'date' })}
        ${text('expires', 'Expires', { type: 'date' })}
        <div class="span-2">${text('link', 'Link', { type: 'url', placeholder: 'https://…' })}</div>
      </section>
      <${Variants} draft=${draft} update=${update} at=${at} reportJson=${reportJson} />
    </div>`;
}

/** Below the save bar: archiving is not part of the form, and takes effect at once. */
function ArchiveSection({ onArchive }) {
  return html`
    <section class="card danger-zone" aria-labelledby="archive-title">
      <h2 class="section-title" id="archive-title">Archive</h2>
      <p>Archiving removes the flag from every environment at once. Its history is kept, and it can be restored from the History tab.</p>
      <button type="button" class="btn btn-danger" data-test="archive" onClick=${onArchive}>Archive flag</button>
    </section>`;
}

/** A blank value of the flag's type, for a new variant. */
function blankLike(value) {
  if (typeof value === 'string') return '';
  if (typeof value === 'number') return 0;
  if (typeof value === 'boolean') return false;
  return {};
}

function Variants({ draft, update, at, reportJson }) {
  const variants = variantsOf(draft);
  const names = Object.keys(variants);
  // A boolean flag without `variants` gets them written out on the first edit.
  const editVariants = (change) => update((c) => {
    if (!isObject(c.variants)) c.variants = { on: true, off: false };
    change(c);
  });
  const add = () => editVariants((c) => {
    let n = names.length + 1;
    while (`variant_${n}` in c.variants) n += 1;
    c.variants[`variant_${n}`] = blankLike(Object.values(c.variants)[0]);
  });

  return html`
    <section class="card" aria-labelledby="variants-title">
      <h2 class="section-title" id="variants-title">Variants</h2>
      <p class="hint">Name → value (JSON: <code>"text"</code> in double quotes, <code>12</code>, <code>true</code>, <code>{"a": 1}</code>).
        All values have one type. Their order is the order percentages are laid out in.</p>
      <ol class="variants">
        ${names.map((name, i) => html`<${VariantRow} key=${i} index=${i} name=${name} value=${variants[name]} names=${names}
          editVariants=${editVariants} at=${at} reportJson=${reportJson} />`)}
      </ol>
      <${FieldError} errors=${at('variants')} />
      <button type="button" class="btn btn-small" data-test="add-variant" onClick=${add}>Add variant</button>
      <div class="field off-field">
        <label for="set-off">Off variant</label>
        <${VariantSelect} id="set-off" data-test="set-off" names=${names} value=${offVariant(draft)} placeholder="Choose a variant"
          aria-describedby="set-off-hint" onChange=${(v) => update((c) => { c.off = v; })} />
        <p class="hint" id="set-off-hint">Served where the flag is switched off, or a prerequisite fails.</p>
        <${FieldError} errors=${at('off')} />
      </div>
    </section>`;
}

function VariantRow({ index, name, value, names, editVariants, at, reportJson }) {
  const [typed, setTyped] = useState(name);
  const [error, setError] = useState(null);
  useEffect(() => setTyped(name), [name]);

  // Renaming happens when the field is left, so half-typed names never reach the references.
  const commitName = () => {
    const next = typed.trim();
    if (next === name) return;
    if (!KEY_RULE.test(next)) {
      setError(`"${next}" is not a valid variant name: use ${KEY_HINT}.`);
      return;
    }
    if (names.includes(next)) {
      setError(`There is already a variant "${next}".`);
      return;
    }
    setError(null);
    editVariants((c) => renameVariant(c, name, next));
  };
  const remove = () => editVariants((c) => {
    delete c.variants[name];
  });
  const idp = `variant-${index}`;

  return html`
    <li class="variant" data-test="variant" data-index=${index}>
      <div class="field">
        <label for=${`${idp}-name`}>Name</label>
        <input id=${`${idp}-name`} type="text" class="mono" data-test="variant-name" value=${typed} spellcheck="false"
          aria-invalid=${error ? 'true' : undefined}
          onInput=${(e) => setTyped(e.currentTarget.value)} onChange=${commitName}
          onKeyDown=${(e) => { if (e.key === 'Enter') e.currentTarget.blur(); }} />
        ${error ? html`<div class="field-error" data-test="field-error" role="alert">${error}</div>` : null}
      </div>
      <div class="field field-grow">
        <label for=${`${idp}-value`}>Value</label>
        <${JsonField} id=${`${idp}-value`} data-test="variant-value" errorId=${`${idp}-value-error`} value=${value}
          multiline=${isObject(value)} reportJson=${reportJson}
          onChange=${(v) => editVariants((c) => { c.variants[name] = v; })} />
      </div>
      <button type="button" class="btn btn-ghost btn-small" data-test="remove-variant" disabled=${names.length <= 1}
        aria-label=${`Remove variant ${name}`} onClick=${remove}>Remove</button>
      <${FieldError} errors=${at(`variants.${name}`)} />
    </li>`;
}
