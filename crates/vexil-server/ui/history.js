// A flag's history (`#/flags/KEY/history`): every version newest first, each with its diff
// against the version before, and a way back to any earlier version — including restoring an
// archived (deleted) flag.

import { html, useState, useEffect, useCallback } from './vendor/preact-htm.js';
import { api, ApiError } from './api.js';
import { confirmDialog, notify, fmtTime, Badge, Spinner, EmptyState, ErrorBox } from './ui.js';
import { DiffView, summarize } from './diff.js';
import { same } from './doc.js';


/**
 * Pairs every version with the definition it is compared to: the last real definition before
 * it, so a version written after an archive shows what changed since the flag was deleted.
 * Returned newest first.
 */
export function withPrevious(versions) {
  let previous = null;
  let previousDeleted = false;
  const out = versions.map((v) => {
    const entry = { ...v, previous, afterArchive: previousDeleted };
    if (v.deleted) previousDeleted = true;
    else {
      previous = v.definition;
      previousDeleted = false;
    }
    return entry;
  });
  return out.reverse();
}

function versionSummary(v) {
  if (v.deleted) return 'Archived: the flag was deleted. Restore it by reverting to an earlier version.';
  if (v.afterArchive) {
    return same(v.previous, v.definition) ? 'restored' : `re-created after archive: ${summarize(v.previous, v.definition)}`;
  }
  return undefined;
}

function Version({ v, current, archived, restoreVersion, busy, onRevert }) {
  const isCurrent = v.version === current.version;
  const label = v.version === restoreVersion ? 'Restore' : `Revert to v${v.version}`;
  return html`<li class="hist-version" data-test="version" data-version=${v.version}>
    <div class="hist-head">
      <strong class="hist-number">v${v.version}</strong>
      ${isCurrent && !archived && html`<${Badge} kind="on">current<//>`}
      ${v.deleted && html`<${Badge} kind="off">archived<//>`}
      <span class="hist-meta">by <span class="hist-who">${v.updated_by}</span> · ${fmtTime(v.updated_at)}</span>
      ${!isCurrent && !v.deleted &&
      html`<button type="button" class="btn btn-small hist-revert" data-test="revert" disabled=${busy}
        onClick=${() => onRevert(v)}>${label}</button>`}
    </div>
    <${DiffView} before=${v.deleted ? null : v.previous} after=${v.deleted ? null : v.definition} summary=${versionSummary(v)} />
  </li>`;
}

export function HistoryPage({ flagKey }) {
  const [versions, setVersions] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [conflict, setConflict] = useState(null);
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    setLoadError(null);
    try {
      const { data } = await api('GET', `/api/v1/flags/${encodeURIComponent(flagKey)}/history`);
      setVersions(data.versions);
    } catch (e) {
      setLoadError(e);
    }
  }, [flagKey]);

  useEffect(() => {
    setVersions(null);
    setConflict(null);
    load();
  }, [load]);

  if (loadError) {
    return loadError instanceof ApiError && loadError.status === 404
      ? html`<${EmptyState} title="No history">${loadError.message}<//>`
      : html`<${ErrorBox} error=${loadError} onRetry=${load} title="Could not load the history" />`;
  }
  if (!versions) return html`<${Spinner} label="Loading history…" />`;

  const current = versions[versions.length - 1];
  const archived = current.deleted;
  // An archived flag comes back by reverting to its last real version.
  const restoreVersion = archived ? [...versions].reverse().find((v) => !v.deleted)?.version : undefined;

  const revert = async (v) => {
    const restoring = v.version === restoreVersion;
    const question = restoring
      ? `Restore the archived flag "${flagKey}" as it was at version ${v.version}?`
      : `Revert "${flagKey}" to version ${v.version}? This writes a new version with version ${v.version}'s definition; the history is kept.`;
    if (!(await confirmDialog(question, { yes: restoring ? 'Restore' : 'Revert', title: restoring ? 'Restore flag' : 'Revert flag' }))) return;
    setBusy(true);
    setConflict(null);
    try {
      const { data } = await api('POST', `/api/v1/flags/${encodeURIComponent(flagKey)}/revert`, {
        body: { version: v.version },
        // For an archived flag the deletion's version stands in for the current one, so two
        // people restoring it at once cannot both win.
        ifMatch: current.version,
        comment: comment.trim() || undefined,
      });
      notify(`${restoring ? 'Restored' : 'Reverted'} "${flagKey}" to version ${v.version}; it is now at v${data.version}.`, 'success');
      setComment('');
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) setConflict(e.message);
      else notify(e.message, 'error');
    } finally {
      setBusy(false);
      load();
    }
  };

  return html`<section class="history">
    <h2 class="sr-only">History</h2>
    ${archived && html`<p class="notice">This flag is archived. Its history is kept; restore it from its last version below.</p>`}
    ${conflict && html`<div class="conflict" data-test="conflict" role="alert">
      <p><strong>Not reverted: someone else changed this flag meanwhile.</strong></p>
      <p>${conflict}</p>
      <p>The list below now shows the latest versions; check them and try again.</p>
    </div>`}
    <div class="field hist-comment">
      <label for="history-comment">Comment for the audit log (optional)</label>
      <input id="history-comment" type="text" value=${comment} maxlength="500" onInput=${(e) => setComment(e.currentTarget.value)} />
    </div>
    <ol class="hist-list">
      ${withPrevious(versions).map((v) => html`<${Version} key=${v.version} v=${v} current=${current} archived=${archived}
        restoreVersion=${restoreVersion} busy=${busy} onRevert=${revert} />`)}
    </ol>
  </section>`;
}
