// Environments (`#/environments`): the list, with how many flags override each, and a form to
// add one. Environments are never deleted from the UI.

import { html, useState, useEffect, useCallback } from './vendor/preact-htm.js';
import { api, ApiError } from './api.js';
import { notify, FieldError, Spinner, ErrorBox } from './ui.js';
import { KEY_RULE, plural } from './doc.js';

/** How many flags have their own targeting (an override) in each environment. */
export function overrideCounts(flags) {
  const counts = {};
  for (const f of flags) {
    const envs = f.definition && typeof f.definition === 'object' ? f.definition.environments : null;
    if (envs && typeof envs === 'object') for (const name of Object.keys(envs)) counts[name] = (counts[name] || 0) + 1;
  }
  return counts;
}

function CreateEnvironment({ existing, onCreated }) {
  const [name, setName] = useState('');
  const [errors, setErrors] = useState([]);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    const n = name.trim();
    if (!KEY_RULE.test(n)) {
      return setErrors([{ message: 'Use 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit.' }]);
    }
    if (existing.includes(n)) return setErrors([{ message: `The environment "${n}" already exists.` }]);
    setBusy(true);
    setErrors([]);
    try {
      await api('POST', '/api/v1/environments', { body: { name: n } });
      notify(`Created environment "${n}".`, 'success');
      setName('');
      onCreated();
    } catch (err) {
      const details = err instanceof ApiError ? err.details : [];
      setErrors(details.length ? details : [{ message: err.message }]);
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="inline-form" onSubmit=${submit} novalidate>
    <div class="field">
      <label for="env-name">New environment name</label>
      <input id="env-name" data-test="env-name" type="text" spellcheck="false" autocomplete="off" placeholder="qa"
        value=${name} aria-invalid=${errors.length ? 'true' : 'false'}
        onInput=${(e) => { setName(e.currentTarget.value); setErrors([]); }} />
      <${FieldError} errors=${errors} />
    </div>
    <button type="submit" class="btn btn-primary" data-test="env-create" disabled=${busy}>Create environment</button>
  </form>`;
}

export function EnvironmentsPage({ onChange }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const [envs, flags] = await Promise.all([api('GET', '/api/v1/environments'), api('GET', '/api/v1/flags')]);
      setData({ names: envs.data.environments.map((e) => e.name), overrides: overrideCounts(flags.data.flags) });
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    load();
  }, [load]);

  const created = () => {
    load();
    onChange?.();
  };

  if (error) return html`<${ErrorBox} error=${error} onRetry=${load} title="Could not load the environments" />`;
  if (!data) return html`<${Spinner} label="Loading environments…" />`;
  return html`<section class="environments">
    <h1 class="page-title">Environments</h1>
    <p class="muted">Every flag is evaluated in one environment. A flag can be switched on or off, and can have its own
      targeting (an override), per environment.</p>
    <ul class="env-list">
      ${data.names.map((name) => html`<li key=${name} class="env-row" data-test="env-row" data-env=${name}>
        <span class="env-row-name">${name}</span>
        <span class="muted">${plural(data.overrides[name] || 0, 'flag')} with an override</span>
      </li>`)}
    </ul>
    <${CreateEnvironment} existing=${data.names} onCreated=${created} />
    <p class="muted env-note">Environments are not deleted, here or through the API: flags may hold overrides for them
      and API keys are bound to them. An environment nobody uses costs nothing.</p>
  </section>`;
}
