// Segments: the list (`#/segments`) and the editor of one segment (`#/segments/NAME`), which
// also creates a segment that does not exist yet.

import { html, useState, useEffect, useCallback } from './vendor/preact-htm.js';
import { api, ApiError } from './api.js';
import { confirmDialog, notify, fmtTime, FieldError, errorsFor, Spinner, EmptyState, ErrorBox, setLeaveGuard } from './ui.js';
import { KEY_RULE, OPS, NO_VALUE_OPS, CASE_OPS, plural } from './doc.js';


const segmentPath = (name) => `/api/v1/segments/${encodeURIComponent(name)}`;

/** The names of the segments a flag definition refers to, anywhere in its rules. */
export function segmentsUsed(definition, out = new Set()) {
  if (Array.isArray(definition)) definition.forEach((v) => segmentsUsed(v, out));
  else if (definition && typeof definition === 'object') {
    if (typeof definition.segment === 'string') out.add(definition.segment);
    Object.values(definition).forEach((v) => segmentsUsed(v, out));
  }
  return out;
}

// ---- Keys and values as text ----

/** "a, b\nc" → ["a", "b", "c"]: one key per line or comma separated. */
export function splitKeys(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

/**
 * Condition values as the user edits them: "a, b" when that reads back the same, JSON otherwise.
 * A regular expression (`matches`) is one value, commas and all, as in the flag editor.
 */
export function valuesToText(values, op) {
  if (!Array.isArray(values) || values.length === 0) return '';
  const plain = (v) => typeof v === 'string' && v !== '' && v.trim() === v && !v.startsWith('[');
  if (op === 'matches') return values.length === 1 && plain(values[0]) ? values[0] : JSON.stringify(values);
  return values.every((v) => plain(v) && !v.includes(',')) ? values.join(', ') : JSON.stringify(values);
}

/** The inverse of `valuesToText`: `{values}` or `{error}`. */
export function textToValues(text, op) {
  const t = text.trim();
  if (!t.startsWith('[')) {
    if (op === 'matches') return { values: t ? [t] : [] };
    return { values: t.split(',').map((s) => s.trim()).filter(Boolean) };
  }
  try {
    const v = JSON.parse(t);
    return Array.isArray(v) ? { values: v } : { error: 'expected a JSON array' };
  } catch (e) {
    return { error: `not a valid JSON array: ${e.message}` };
  }
}

const isSimple = (c) =>
  c && typeof c === 'object' && typeof c.attribute === 'string' &&
  Object.keys(c).every((k) => ['attribute', 'op', 'values', 'value', 'ignore_case'].includes(k));

/**
 * A segment definition as the editor's form: simple attribute conditions become rows, anything
 * nested (`segment`, `not`, `any`, `all`) stays JSON.
 */
export function toForm(def = {}) {
  const when = Array.isArray(def.when) ? def.when : [];
  return {
    description: def.description ?? '',
    include: (def.include ?? []).join('\n'),
    exclude: (def.exclude ?? []).join('\n'),
    rows: when.filter(isSimple).map((c) => ({
      attribute: c.attribute,
      op: c.op ?? 'in',
      values: valuesToText(c.values ?? (c.value === undefined ? [] : [c.value]), c.op),
      ignore_case: c.ignore_case === true,
    })),
    advanced: when.some((c) => !isSimple(c)) ? JSON.stringify(when.filter((c) => !isSimple(c)), null, 2) : '',
    rest: Object.fromEntries(Object.entries(def).filter(([k]) => !['description', 'include', 'exclude', 'when'].includes(k))),
  };
}

/**
 * The form as a segment definition: `{definition}`, or `{errors: [{path, message}]}` for what
 * cannot even be sent (values or JSON that do not parse). Empty fields are left out.
 */
export function fromForm(form) {
  const errors = [];
  const when = form.rows.map((r, i) => {
    const c = { attribute: r.attribute.trim(), op: r.op };
    if (!NO_VALUE_OPS.has(r.op)) {
      const parsed = textToValues(r.values, r.op);
      if (parsed.error) errors.push({ path: `when[${i}].values`, message: parsed.error });
      c.values = parsed.values ?? [];
    }
    if (r.ignore_case && CASE_OPS.has(r.op)) c.ignore_case = true;
    return c;
  });
  if (form.advanced.trim()) {
    try {
      const more = JSON.parse(form.advanced);
      if (Array.isArray(more)) when.push(...more);
      else errors.push({ path: 'advanced', message: 'expected a JSON array of conditions, like [{"segment": "staff"}]' });
    } catch (e) {
      errors.push({ path: 'advanced', message: `not valid JSON: ${e.message}` });
    }
  }
  if (errors.length) return { errors };
  const definition = { ...form.rest };
  if (form.description.trim()) definition.description = form.description.trim();
  const include = splitKeys(form.include);
  const exclude = splitKeys(form.exclude);
  if (include.length) definition.include = include;
  if (exclude.length) definition.exclude = exclude;
  if (when.length) definition.when = when;
  return { definition };
}

/**
 * Moves server errors on `when[i]` past the simple rows onto the JSON box, renumbered within it,
 * so every error lands next to what the user typed.
 */
function placeErrors(details, rowCount) {
  return details.map((d) => {
    const m = /^when\[(\d+)\](.*)$/.exec(d.path || '');
    if (!m || Number(m[1]) < rowCount) return d;
    const where = m[2].replace(/^\./, '');
    return { path: 'advanced', message: `JSON condition ${Number(m[1]) - rowCount + 1}${where ? ` (${where})` : ''}: ${d.message}` };
  });
}

// ---- The list ----

function NewSegment({ existing }) {
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const submit = (e) => {
    e.preventDefault();
    const n = name.trim();
    if (!KEY_RULE.test(n)) setError('Use 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit.');
    else if (existing.includes(n)) setError(`A segment "${n}" already exists.`);
    else location.hash = `#/segments/${encodeURIComponent(n)}`;
  };
  return html`<form class="inline-form" onSubmit=${submit}>
    <div class="field">
      <label for="segment-new-name">New segment name</label>
      <input id="segment-new-name" data-test="segment-new-name" type="text" spellcheck="false" autocomplete="off"
        value=${name} aria-invalid=${error ? 'true' : 'false'} onInput=${(e) => { setName(e.currentTarget.value); setError(null); }} />
      ${error && html`<${FieldError} errors=${[{ message: error }]} />`}
    </div>
    <button type="submit" class="btn btn-primary" data-test="segment-new">Create segment</button>
  </form>`;
}

function SegmentRow({ segment, usedBy }) {
  const d = segment.definition || {};
  const counts = [
    plural((d.include || []).length, 'included key'),
    plural((d.exclude || []).length, 'excluded key'),
    plural((d.when || []).length, 'condition'),
    `used by ${plural(usedBy, 'flag')}`,
  ];
  return html`<li class="segment-row" data-test="segment-row" data-segment=${segment.name}>
    <a class="segment-name" href=${`#/segments/${encodeURIComponent(segment.name)}`}>${segment.name}</a>
    <span class="segment-description">${d.description || html`<span class="muted">No description</span>`}</span>
    <span class="segment-counts muted">${counts.join(' · ')}</span>
  </li>`;
}

export function SegmentsPage() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const [segments, flags] = await Promise.all([api('GET', '/api/v1/segments'), api('GET', '/api/v1/flags')]);
      const usage = {};
      for (const f of flags.data.flags) for (const s of segmentsUsed(f.definition)) usage[s] = (usage[s] || 0) + 1;
      const list = segments.data.segments.map((s) => ({ ...s, name: s.name ?? s.key }));
      setData({ segments: list.sort((a, b) => a.name.localeCompare(b.name)), usage });
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    load();
  }, [load]);

  if (error) return html`<${ErrorBox} error=${error} onRetry=${load} title="Could not load the segments" />`;
  if (!data) return html`<${Spinner} label="Loading segments…" />`;
  return html`<section class="segments">
    <h1 class="page-title">Segments</h1>
    <p class="muted">Reusable groups of users that flag rules refer to with a <code>segment</code> condition.</p>
    <${NewSegment} existing=${data.segments.map((s) => s.name)} />
    ${data.segments.length === 0
      ? html`<${EmptyState} title="No segments yet">Create one above, then use it in a flag's rules.<//>`
      : html`<ul class="segment-list">
          ${data.segments.map((s) => html`<${SegmentRow} key=${s.name} segment=${s} usedBy=${data.usage[s.name] || 0} />`)}
        </ul>`}
  </section>`;
}

// ---- The editor ----

function ConditionRow({ row, index, errors, onChange, onRemove }) {
  const id = (f) => `seg-cond-${index}-${f}`;
  const set = (field) => (e) => onChange({ ...row, [field]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const mine = errorsFor(errors, `when[${index}]`);
  return html`<li class="condition" data-test="condition" data-index=${index}>
    <div class="condition-fields">
      <div class="field">
        <label for=${id('attr')}>Attribute</label>
        <input id=${id('attr')} data-test="cond-attribute" type="text" spellcheck="false" value=${row.attribute} onInput=${set('attribute')} />
      </div>
      <div class="field">
        <label for=${id('op')}>Operator</label>
        <select id=${id('op')} data-test="cond-op" value=${row.op} onChange=${set('op')}>
          ${OPS.map((op) => html`<option key=${op} value=${op}>${op}</option>`)}
        </select>
      </div>
      ${!NO_VALUE_OPS.has(row.op) && html`<div class="field field-grow">
        <label for=${id('values')}>Values <span class="muted">(comma separated, or a JSON array)</span></label>
        <input id=${id('values')} data-test="cond-values" type="text" spellcheck="false" value=${row.values} onInput=${set('values')} />
      </div>`}
      ${CASE_OPS.has(row.op) && html`<label class="field-check">
        <input data-test="cond-ignore-case" type="checkbox" checked=${row.ignore_case} onChange=${set('ignore_case')} /> Ignore case
      </label>`}
      <button type="button" class="btn btn-small cond-remove" data-test="remove-condition" aria-label=${`Remove condition ${index + 1}`} onClick=${onRemove}>Remove</button>
    </div>
    <${FieldError} errors=${mine} />
  </li>`;
}

function Conflict({ message, onReload }) {
  return html`<div class="conflict" data-test="conflict" role="alert">
    <p><strong>Not saved: someone else changed this segment meanwhile.</strong></p>
    <p>${message}</p>
    <p>Your edits are still here. Reload to see their version (your edits will be lost), or copy what you need first.</p>
    <button type="button" class="btn" data-test="conflict-reload" onClick=${onReload}>Reload the segment</button>
  </div>`;
}

function Editor({ name, record, onSaved, onReload }) {
  const [initial] = useState(() => toForm(record?.definition));
  const [form, setForm] = useState(initial);
  const [errors, setErrors] = useState([]);
  const [conflict, setConflict] = useState(null);
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (field) => (e) => setForm({ ...form, [field]: e.currentTarget.value });
  const setRow = (i, row) => setForm({ ...form, rows: form.rows.map((r, j) => (j === i ? row : r)) });
  const fieldErrors = (prefix) => errorsFor(errors, prefix);
  const placed = ['description', 'include', 'exclude', 'advanced', ...form.rows.map((_, i) => `when[${i}]`)];
  const unplaced = errors.filter((e) => !placed.some((p) => errorsFor([e], p).length));
  const dirty = JSON.stringify(form) !== JSON.stringify(initial);

  useEffect(() => {
    if (!dirty) return undefined;
    setLeaveGuard({
      message: `You have unsaved changes to the segment "${name}". Leave this page and lose them?`,
      allows: (path) => path[0] === 'segments' && path[1] === name,
    });
    return () => setLeaveGuard(null);
  }, [dirty, name]);

  const save = async (e) => {
    e.preventDefault();
    const built = fromForm(form);
    if (built.errors) return setErrors(built.errors);
    setBusy(true);
    setErrors([]);
    setConflict(null);
    try {
      // A new segment is created only if nobody created one of that name meanwhile.
      const { data } = await api('PUT', segmentPath(name), {
        body: built.definition,
        ifMatch: record?.version,
        ifNoneMatch: record ? undefined : '*',
        comment: comment.trim() || undefined,
      });
      notify(record ? `Saved segment "${name}" (v${data.version}).` : `Created segment "${name}".`, 'success');
      setComment('');
      onSaved(data);
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) setConflict(err.message);
      else if (err instanceof ApiError && err.details.length) setErrors(placeErrors(err.details, form.rows.length));
      else setErrors([{ path: '', message: err.message }]);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!(await confirmDialog(`Delete the segment "${name}"? Flags that use it must stop using it first.`, { yes: 'Delete', danger: true, title: 'Delete segment' }))) return;
    setBusy(true);
    try {
      await api('DELETE', segmentPath(name), { ifMatch: record.version, comment: comment.trim() || undefined });
      notify(`Deleted segment "${name}".`, 'success');
      setLeaveGuard(null);
      location.hash = '#/segments';
    } catch (err) {
      // 409: still in use; the server's message names every flag and segment using it.
      if (err instanceof ApiError && err.status === 412) setConflict(err.message);
      else setErrors([{ path: '', message: `Not deleted: ${err.message}` }]);
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="segment-form" onSubmit=${save} novalidate>
    ${conflict && html`<${Conflict} message=${conflict} onReload=${onReload} />`}
    <div class="field">
      <label for="seg-description">Description</label>
      <input id="seg-description" data-test="segment-description" type="text" value=${form.description} onInput=${set('description')} />
      <${FieldError} errors=${fieldErrors('description')} />
    </div>
    <div class="segment-keys">
      <div class="field">
        <label for="seg-include">Always included <span class="muted">(targeting keys, one per line or comma separated)</span></label>
        <textarea id="seg-include" data-test="segment-include" rows="4" spellcheck="false" value=${form.include} onInput=${set('include')}></textarea>
        <${FieldError} errors=${fieldErrors('include')} />
      </div>
      <div class="field">
        <label for="seg-exclude">Never included <span class="muted">(targeting keys)</span></label>
        <textarea id="seg-exclude" data-test="segment-exclude" rows="4" spellcheck="false" value=${form.exclude} onInput=${set('exclude')}></textarea>
        <${FieldError} errors=${fieldErrors('exclude')} />
      </div>
    </div>
    <fieldset class="segment-when">
      <legend>Everyone else is in when all of these hold</legend>
      ${form.rows.length === 0 && !form.advanced.trim() && html`<p class="muted">No conditions: only the included keys are in the segment.</p>`}
      ${form.rows.length > 0 && html`<ol class="conditions">
        ${form.rows.map((row, i) => html`<${ConditionRow} key=${i} row=${row} index=${i} errors=${errors}
          onChange=${(r) => setRow(i, r)} onRemove=${() => setForm({ ...form, rows: form.rows.filter((_, j) => j !== i) })} />`)}
      </ol>`}
      <button type="button" class="btn" data-test="add-condition"
        onClick=${() => setForm({ ...form, rows: [...form.rows, { attribute: '', op: 'in', values: '', ignore_case: false }] })}>Add condition</button>
      <div class="field">
        <label for="seg-advanced">More conditions as JSON <span class="muted">(for <code>segment</code>, <code>not</code>, <code>any</code>, <code>all</code>; a JSON array)</span></label>
        <textarea id="seg-advanced" data-test="segment-advanced" rows="4" spellcheck="false" placeholder='[{"any": [{"attribute": "country", "op": "in", "values": ["DE"]}, {"segment": "staff"}]}]'
          value=${form.advanced} onInput=${set('advanced')}></textarea>
        <${FieldError} errors=${fieldErrors('advanced')} />
      </div>
    </fieldset>
    ${unplaced.length > 0 && html`<div class="form-errors" data-test="form-errors" role="alert">
      ${unplaced.map((e, i) => html`<p key=${i}>${e.path ? html`<code>${e.path}</code>: ` : ''}${e.message}</p>`)}
    </div>`}
    <div class="field">
      <label for="seg-comment">Comment for the audit log (optional)</label>
      <input id="seg-comment" data-test="comment" type="text" maxlength="500" value=${comment} onInput=${(e) => setComment(e.currentTarget.value)} />
    </div>
    <div class="form-actions">
      <button type="submit" class="btn btn-primary" data-test="save" disabled=${busy}>${record ? 'Save' : 'Create segment'}</button>
      ${record && html`<button type="button" class="btn btn-danger" data-test="segment-delete" disabled=${busy} onClick=${remove}>Delete</button>`}
    </div>
  </form>`;
}

export function SegmentPage({ name }) {
  // `record` is null for a segment that does not exist yet (the editor then creates it).
  const [state, setState] = useState({ loading: true });
  const valid = KEY_RULE.test(name);

  const load = useCallback(async () => {
    setState({ loading: true });
    try {
      const { data } = await api('GET', segmentPath(name));
      setState({ record: data });
    } catch (e) {
      setState(e instanceof ApiError && e.status === 404 ? { record: null } : { error: e });
    }
  }, [name]);
  useEffect(() => {
    if (valid) load();
  }, [load]);

  const head = html`<p class="breadcrumb"><a href="#/segments">Segments</a> /</p>`;
  if (!valid) {
    return html`${head}<${EmptyState} title="Invalid segment name">
      "${name}" cannot be a segment name: use 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit.
    <//>`;
  }
  if (state.loading) return html`<${Spinner} label="Loading the segment…" />`;
  if (state.error) return html`${head}<${ErrorBox} error=${state.error} onRetry=${load} title="Could not load the segment" />`;
  const { record } = state;
  return html`<section class="segment">
    ${head}
    <h1 class="page-title" data-test="segment-name">${name}</h1>
    ${record
      ? html`<p class="muted" data-test="segment-version">v${record.version} · last changed by ${record.updated_by} · ${fmtTime(record.updated_at)}</p>`
      : html`<p class="notice">No segment "${name}" exists yet; saving creates it.</p>`}
    <${Editor} key=${record ? record.version : 'new'} name=${name} record=${record}
      onSaved=${(data) => setState({ record: { ...data, name } })} onReload=${load} />
  </section>`;
}
