// The audit log (`#/audit`, `?flag=KEY`): who changed what and when, newest first, filtered by
// flag and time on the server and by free text in the browser; every event opens to its diff.

import { html, useState, useEffect, useRef } from './vendor/preact-htm.js';
import { api } from './api.js';
import { fmtTime, Spinner, EmptyState, ErrorBox } from './ui.js';
import { DiffView } from './diff.js';

const FIRST_LIMIT = 100;
const MAX_LIMIT = 1000;

/** A `datetime-local` value (local time) as RFC 3339, or undefined when empty or invalid. */
export function localToRfc3339(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Whether an event mentions `text` (case-insensitive) in its actor, action, target or comment. */
export function eventMatches(event, text) {
  const q = text.trim().toLowerCase();
  if (!q) return true;
  return [event.actor, event.action, event.target, event.comment].some((f) => (f || '').toLowerCase().includes(q));
}

/** `value`, once it has stopped changing for `ms`. */
function useDebounced(value, ms) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

function Target({ target }) {
  const [kind, ...rest] = target.split(':');
  const name = rest.join(':');
  const href = { flag: `#/flags/${encodeURIComponent(name)}`, segment: `#/segments/${encodeURIComponent(name)}`, environment: '#/environments' }[kind];
  return href ? html`<a href=${href}>${target}</a>` : html`<span>${target}</span>`;
}

function changeSummary(event) {
  if (event.action === 'import') return 'Configuration replaced by an import; the lines below are the configuration before it.';
  if (event.before == null && event.after == null) return 'No recorded state.';
  return undefined;
}

function AuditRow({ event }) {
  const [open, setOpen] = useState(false);
  const detailsId = `audit-details-${event.id}`;
  return html`<li class="audit-row" data-test="audit-row">
    <div class="audit-fields">
      <span class="audit-time">${fmtTime(event.at)}</span>
      <span class="audit-actor">${event.actor}</span>
      <code class="audit-action">${event.action}</code>
      <span class="audit-target"><${Target} target=${event.target} /></span>
      <span class="audit-comment">${event.comment || ''}</span>
      <button type="button" class="btn btn-small audit-toggle" data-test="audit-expand" aria-expanded=${open}
        aria-controls=${detailsId} onClick=${() => setOpen(!open)}>${open ? 'Hide change' : 'Show change'}</button>
    </div>
    ${open && html`<div id=${detailsId} class="audit-details">
      <${DiffView} before=${event.before} after=${event.after} summary=${changeSummary(event)} />
    </div>`}
  </li>`;
}

export function AuditPage({ route }) {
  const routeFlag = route.query.get('flag') || '';
  const [flag, setFlag] = useState(routeFlag);
  const [since, setSince] = useState('');
  const [search, setSearch] = useState('');
  const [page, setPage] = useState({ query: '', limit: FIRST_LIMIT });
  const [events, setEvents] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const latest = useRef(0);

  useEffect(() => setFlag(routeFlag), [routeFlag]);

  const query = useDebounced(`${flag.trim()}\n${since}`, 300);
  const [qFlag, qSince] = query.split('\n');
  // A new filter starts again from the first page.
  const limit = page.query === query ? page.limit : FIRST_LIMIT;

  const load = async () => {
    const id = ++latest.current;
    setLoading(true);
    setError(null);
    try {
      const { data } = await api('GET', '/api/v1/audit', { query: { flag: qFlag, since: localToRfc3339(qSince), limit } });
      if (id === latest.current) setEvents(data.events);
    } catch (e) {
      if (id === latest.current) setError(e);
    } finally {
      if (id === latest.current) setLoading(false);
    }
  };

  useEffect(() => {
    load();
    // Keep the address shareable: it names the flag filter.
    const hash = qFlag ? `#/audit?flag=${encodeURIComponent(qFlag)}` : '#/audit';
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }, [qFlag, qSince, limit]);

  const shown = (events || []).filter((e) => eventMatches(e, search));
  const more = events && events.length >= limit && limit < MAX_LIMIT;

  return html`<section class="audit">
    <h1 class="page-title">Audit log</h1>
    <form class="filters audit-filters" onSubmit=${(e) => e.preventDefault()} role="search">
      <div class="field">
        <label for="audit-flag">Flag</label>
        <input id="audit-flag" data-test="audit-flag" type="search" value=${flag} placeholder="flag key"
          autocomplete="off" spellcheck="false" onInput=${(e) => setFlag(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="audit-since">Since</label>
        <input id="audit-since" data-test="audit-since" type="datetime-local" value=${since}
          onInput=${(e) => setSince(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="audit-search">Search</label>
        <input id="audit-search" data-test="audit-search" type="search" value=${search}
          placeholder="actor, action, target, comment" onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
    </form>
    ${error && html`<${ErrorBox} error=${error} onRetry=${load} title="Could not load the audit log" />`}
    ${!events && !error && html`<${Spinner} label="Loading the audit log…" />`}
    ${events && html`<p class="muted audit-count" aria-live="polite">
      ${search.trim() ? `${shown.length} of ${events.length} events` : `${events.length} events`}${loading ? ' · updating…' : ''}
    </p>`}
    ${events && shown.length === 0 && html`<${EmptyState} title="No events">
      Nothing matches these filters${qFlag ? ` for flag "${qFlag}"` : ''}.
    <//>`}
    ${shown.length > 0 && html`<div class="audit-head" aria-hidden="true">
      <span>When</span><span>Who</span><span>Action</span><span>Target</span><span>Comment</span><span></span>
    </div>
    <ol class="audit-list">
      ${shown.map((e) => html`<${AuditRow} key=${e.id} event=${e} />`)}
    </ol>`}
    ${more && html`<button type="button" class="btn audit-more" data-test="audit-more" disabled=${loading}
      onClick=${() => setPage({ query, limit: Math.min(limit * 2, MAX_LIMIT) })}>Load more</button>`}
  </section>`;
}
