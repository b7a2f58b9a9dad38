// The playground (`#/playground`, `?flag=&env=`): evaluate a flag for a context in an
// environment and see, step by step, why it came out that way.

import { html, useState, useEffect, useRef } from './vendor/preact-htm.js';
import { api } from './api.js';
import { Spinner, ErrorBox, EmptyState } from './ui.js';
import { localToRfc3339 } from './audit.js';

const STORAGE_KEY = 'vexil.playground.context';
const STARTER = '{\n  "targetingKey": "user-1"\n}';

function loadContext() {
  try {
    return localStorage.getItem(STORAGE_KEY) || STARTER;
  } catch {
    return STARTER;
  }
}

function saveContext(text) {
  try {
    localStorage.setItem(STORAGE_KEY, text);
  } catch {
    // Storage may be disabled or full; the playground works without remembering.
  }
}

/** The context text parsed: `{context}` for a JSON object, `{error}` with the reason otherwise. */
export function parseContext(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: `Not valid JSON: ${e.message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { error: 'The context must be a JSON object, like {"targetingKey": "user-1", "plan": "pro"}.' };
  }
  return { context: value };
}

/** What the helper's value box means: JSON as such (`42`, `true`, `"42"`, `["a"]`), anything else as text. */
export function attributeValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const pretty = (v) => JSON.stringify(v, null, 2);

/** Sets targetingKey and other attributes in the context text without retyping the JSON. */
function ContextHelper({ context, onChange }) {
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const disabled = !context;
  const setAttribute = (e) => {
    e.preventDefault();
    const attr = name.trim();
    if (!attr || disabled) return;
    onChange(pretty({ ...context, [attr]: attributeValue(value) }));
    setName('');
    setValue('');
  };
  return html`<fieldset class="pg-helper" disabled=${disabled}>
    <legend>Quick edit${disabled ? ' (fix the JSON first)' : ''}</legend>
    <div class="field">
      <label for="pg-key">targetingKey</label>
      <input id="pg-key" data-test="pg-key" type="text" spellcheck="false" value=${context?.targetingKey ?? ''}
        onInput=${(e) => onChange(pretty({ ...context, targetingKey: e.currentTarget.value }))} />
    </div>
    <div class="pg-attr">
      <div class="field">
        <label for="pg-attr-name">Attribute</label>
        <input id="pg-attr-name" type="text" spellcheck="false" placeholder="plan" value=${name}
          onInput=${(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="pg-attr-value">Value</label>
        <input id="pg-attr-value" type="text" spellcheck="false" placeholder="pro" value=${value} aria-describedby="pg-attr-hint"
          onInput=${(e) => setValue(e.currentTarget.value)} onKeyDown=${(e) => e.key === 'Enter' && setAttribute(e)} />
      </div>
      <button type="button" class="btn" onClick=${setAttribute} disabled=${!name.trim()}>Set</button>
    </div>
    <p id="pg-attr-hint" class="hint">Text, or JSON such as <code>42</code>, <code>true</code>, <code>"42"</code>, <code>["a", "b"]</code>.</p>
  </fieldset>`;
}

function Mark({ ok, yes = 'held', no = 'not held' }) {
  return html`<span class=${`pg-mark ${ok ? 'pg-yes' : 'pg-no'}`} title=${ok ? yes : no}>${ok ? '✓' : '✗'}<span class="sr-only"> ${ok ? yes : no}</span></span>`;
}

/** Where a context fell in a rollout: bucket 23779 of 100000 is at 23.779%. */
function Bucket({ bucket }) {
  if (bucket === null || bucket === undefined) return null;
  return html`<span class="muted"> · bucket ${bucket} of 100000 (at ${(bucket / 1000).toFixed(3)}%)</span>`;
}

function RuleStep({ rule }) {
  const label = `Rule ${rule.index + 1}${rule.name ? ` “${rule.name}”` : ''}`;
  return html`<li class=${`pg-step pg-rule ${rule.matched ? 'pg-matched' : ''}`} data-test="pg-rule" data-index=${rule.index}>
    <div class="pg-step-head"><${Mark} ok=${rule.matched} yes="matched" no="did not match" /> <strong>${label}</strong>
      <span class="pg-outcome"> → ${rule.outcome}</span><${Bucket} bucket=${rule.bucket} />
      ${rule.variant && html` → <strong>${rule.variant}</strong>`}</div>
    <ul class="pg-conditions">
      ${rule.conditions.map((c) => html`<li key=${c.index} class="pg-condition" data-test="pg-condition" data-held=${String(c.held)}>
        <${Mark} ok=${c.held} /> <code>${c.text}</code>
      </li>`)}
    </ul>
    ${rule.skipped && html`<p class="pg-note">Matched, but its rollout could not bucket this context${rule.note ? ` (${rule.note})` : ''}, so evaluation went on.</p>`}
  </li>`;
}

function Steps({ explanation: x, environment }) {
  const overridden = x.scope === 'environment';
  const key = x.targets?.key;
  return html`<ol class="pg-steps" data-test="pg-steps">
    <li class="pg-step">
      <${Mark} ok=${x.enabled} yes="enabled" no="disabled" />
      ${x.enabled ? ' Enabled' : ' Disabled'} in ${environment}
      <span class="muted"> (${overridden ? `the ${environment} override decides the targeting` : 'flag-level targeting'})</span>
    </li>
    ${x.prerequisites.length > 0 && html`<li class="pg-step">Prerequisites
      <ul class="pg-conditions">${x.prerequisites.map((p) => html`<li key=${p.flag} class="pg-condition">
        <${Mark} ok=${p.met} yes="met" no="not met" />
        <span><a href=${`#/flags/${encodeURIComponent(p.flag)}`}>${p.flag}</a> must serve ${p.required.join(' or ')}; it served ${p.served ?? 'nothing'}</span>
      </li>`)}</ul>
    </li>`}
    ${x.targets && html`<li class="pg-step">
      <${Mark} ok=${x.targets.matched} yes="in the targets" no="not in the targets" />
      ${x.targets.matched
        ? ` Targets: ${key ? `"${key}" is` : 'listed'} under ${x.targets.variant}`
        : key ? ` Targets: "${key}" is in no target list` : ' Targets: the context has no targetingKey'}
    </li>`}
    ${x.rules.map((r) => html`<${RuleStep} key=${r.index} rule=${r} />`)}
    ${x.default && html`<li class="pg-step pg-default">
      <strong>Default</strong>: ${x.default.text}<${Bucket} bucket=${x.default.bucket} />
      ${x.default.variant && html` → <strong>${x.default.variant}</strong>`}
      ${x.default.note && html`<p class="pg-note">The rollout could not bucket this context (${x.default.note}), so it served the off variant.</p>`}
    </li>`}
  </ol>`;
}

function Result({ data }) {
  const r = data.result;
  const ref = useRef(null);
  // On a phone the result is below the form: bring each new one into view.
  useEffect(() => ref.current.scrollIntoView({ block: 'nearest', behavior: 'smooth' }), [data]);
  return html`<section class="pg-result" data-test="pg-result" ref=${ref}>
    <h2 class="section-title">Result</h2>
    <dl class="pg-facts">
      <dt>Value</dt><dd><code data-test="pg-value">${JSON.stringify(r.value)}</code></dd>
      <dt>Variant</dt><dd data-test="pg-variant">${r.variant ?? '—'}</dd>
      <dt>Reason</dt><dd data-test="pg-reason">${r.reason}</dd>
      <dt>Rule</dt><dd data-test="pg-rule-decided">${r.rule ? `${r.rule.index + 1}${r.rule.name ? ` “${r.rule.name}”` : ''}` : '—'}</dd>
      ${r.error_code && html`<dt>Error</dt><dd class="pg-error">${r.error_code}: ${r.error_message}</dd>`}
    </dl>
    <p class="pg-summary" data-test="pg-summary" role="status">${data.explanation.summary}</p>
    <h3 class="section-title">How it was decided</h3>
    <${Steps} explanation=${data.explanation} environment=${data.environment} />
  </section>`;
}

export function PlaygroundPage({ route, environments }) {
  const routeFlag = route.query.get('flag') || '';
  const routeEnv = route.query.get('env') || '';
  const [flags, setFlags] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [flag, setFlag] = useState(routeFlag);
  const [env, setEnv] = useState(routeEnv);
  const [text, setText] = useState(loadContext);
  const [now, setNow] = useState('');
  const [result, setResult] = useState(null);
  const [runError, setRunError] = useState(null);
  const [running, setRunning] = useState(false);
  const parsed = parseContext(text);
  const envs = environments || [];
  const envValue = env || envs[0] || '';

  const loadFlags = async () => {
    setLoadError(null);
    try {
      const { data } = await api('GET', '/api/v1/flags');
      const keys = data.flags.map((f) => f.key).sort();
      setFlags(keys);
      setFlag((f) => f || keys[0] || '');
    } catch (e) {
      setLoadError(e);
    }
  };
  useEffect(() => {
    loadFlags();
  }, []);
  // A link to another `?flag=&env=` while the playground is open picks them.
  useEffect(() => {
    if (routeFlag) setFlag(routeFlag);
    if (routeEnv) setEnv(routeEnv);
    setResult(null);
    setRunError(null);
  }, [routeFlag, routeEnv]);

  const changeText = (t) => {
    setText(t);
    saveContext(t);
  };

  const run = async (e) => {
    e?.preventDefault();
    if (parsed.error || !flag || !envValue) return;
    setRunning(true);
    setRunError(null);
    const body = { context: parsed.context };
    const at = localToRfc3339(now);
    if (at) body.now = at;
    try {
      const { data } = await api('POST', `/api/v1/flags/${encodeURIComponent(flag)}/explain`, { query: { env: envValue }, body });
      setResult(data);
      history.replaceState(null, '', `#/playground?flag=${encodeURIComponent(flag)}&env=${encodeURIComponent(envValue)}`);
    } catch (err) {
      setResult(null);
      setRunError(err);
    } finally {
      setRunning(false);
    }
  };

  if (loadError) return html`<${ErrorBox} error=${loadError} onRetry=${loadFlags} title="Could not load the flags" />`;
  if (!flags) return html`<${Spinner} label="Loading flags…" />`;
  if (flags.length === 0) {
    return html`<${EmptyState} title="No flags to try" action=${html`<a class="btn btn-primary" href="#/new">Create a flag</a>`}>
      The playground evaluates a flag for a context you describe. Create a flag first.
    <//>`;
  }
  const unknownFlag = flag && !flags.includes(flag);

  return html`<section class="playground">
    <h1 class="page-title">Playground</h1>
    <p class="muted">Evaluate a flag for a context and see why it came out that way. Nothing is recorded.</p>
    <form class="pg-form" onSubmit=${run}>
      <div class="pg-pickers">
        <div class="field">
          <label for="pg-flag">Flag</label>
          <select id="pg-flag" data-test="pg-flag" value=${flag} onChange=${(e) => setFlag(e.currentTarget.value)}>
            ${unknownFlag && html`<option value=${flag}>${flag} (not found)</option>`}
            ${flags.map((k) => html`<option key=${k} value=${k}>${k}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="pg-env">Environment</label>
          <select id="pg-env" data-test="pg-env" value=${envValue} onChange=${(e) => setEnv(e.currentTarget.value)}>
            ${envValue && !envs.includes(envValue) && html`<option value=${envValue}>${envValue} (not found)</option>`}
            ${envs.map((name) => html`<option key=${name} value=${name}>${name}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="pg-now">Evaluation time <span class="muted">(optional; default now)</span></label>
          <input id="pg-now" data-test="pg-now" type="datetime-local" step="1" value=${now} onInput=${(e) => setNow(e.currentTarget.value)} />
        </div>
      </div>
      <div class="pg-context">
        <div class="field">
          <label for="pg-context">Context (JSON)</label>
          <textarea id="pg-context" data-test="pg-context" rows="10" spellcheck="false" value=${text}
            aria-invalid=${parsed.error ? 'true' : 'false'} aria-describedby="pg-context-help pg-context-error"
            onInput=${(e) => changeText(e.currentTarget.value)}
            onKeyDown=${(e) => e.key === 'Enter' && (e.ctrlKey || e.metaKey) && run(e)}></textarea>
          <p id="pg-context-help" class="muted hint">Attributes of the user, session or account; <code>targetingKey</code> identifies it. Ctrl+Enter runs.</p>
          ${parsed.error && html`<div id="pg-context-error" class="field-error" data-test="pg-context-error" role="alert">${parsed.error}</div>`}
        </div>
        <${ContextHelper} context=${parsed.context} onChange=${changeText} />
      </div>
      <button type="submit" class="btn btn-primary" data-test="pg-run" disabled=${running || !!parsed.error || !envValue}>
        ${running ? 'Evaluating…' : 'Evaluate'}
      </button>
    </form>
    ${runError && html`<${ErrorBox} error=${runError} title="The evaluation failed" />`}
    ${result && html`<${Result} data=${result} />`}
  </section>`;
}
