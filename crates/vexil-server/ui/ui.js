// Small UI pieces every page shares: the confirmation dialog, toasts, time formatting, badges,
// field errors, loading and empty states. Nothing here knows about flags or routes.
import { html, render, useState, useEffect, useRef } from './vendor/preact-htm.js';

// ---------------------------------------------------------------------------------------------
// Confirmation dialog

let closeOpenDialog = null;

/**
 * Asks a yes/no question in a modal dialog; resolves to true only when the user confirms.
 * Escape, the "no" button and opening another dialog all resolve to false. Focus moves into the
 * dialog (the safe button first when `danger`) and returns to where it was afterwards.
 */
export function confirmDialog(text, { yes = 'Confirm', no = 'Cancel', danger = false, title = 'Please confirm' } = {}) {
  if (closeOpenDialog) closeOpenDialog(false);
  const returnFocus = document.activeElement;
  const host = document.createElement('div');
  document.body.appendChild(host);

  return new Promise((resolve) => {
    let done = false;
    const close = (answer) => {
      if (done) return;
      done = true;
      closeOpenDialog = null;
      render(null, host);
      host.remove();
      if (returnFocus && typeof returnFocus.focus === 'function' && document.contains(returnFocus)) {
        returnFocus.focus();
      }
      resolve(answer);
    };
    closeOpenDialog = close;
    render(html`<${ConfirmDialog} text=${text} yes=${yes} no=${no} danger=${danger} title=${title} onClose=${close} />`, host);
  });
}

function ConfirmDialog({ text, yes, no, danger, title, onClose }) {
  const ref = useRef(null);
  const noRef = useRef(null);
  const yesRef = useRef(null);

  useEffect(() => {
    const dialog = ref.current;
    // showModal() makes the rest of the page inert, which is what traps focus inside.
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    (danger ? noRef : yesRef).current.focus();
  }, []);

  const onCancel = (e) => {
    e.preventDefault();
    onClose(false);
  };
  // Browsers without inert support still get a trap: Tab wraps between the two buttons.
  const onKeyDown = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      onClose(false);
    } else if (e.key === 'Tab') {
      const first = noRef.current;
      const last = yesRef.current;
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  // A click on the backdrop (outside the dialog's box) cancels, as people expect.
  const onClick = (e) => {
    if (e.target === ref.current) {
      const r = ref.current.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) onClose(false);
    }
  };

  return html`
    <dialog ref=${ref} class="confirm" data-test="confirm" aria-labelledby="confirm-title"
      aria-describedby="confirm-text" onCancel=${onCancel} onKeyDown=${onKeyDown} onClick=${onClick}>
      <h2 id="confirm-title" class="confirm-title">${title}</h2>
      <p id="confirm-text" class="confirm-text" data-test="confirm-text">${text}</p>
      <div class="confirm-actions">
        <button type="button" ref=${noRef} class="btn" data-test="confirm-no" onClick=${() => onClose(false)}>${no}</button>
        <button type="button" ref=${yesRef} class=${danger ? 'btn btn-danger' : 'btn btn-primary'}
          data-test="confirm-yes" onClick=${() => onClose(true)}>${yes}</button>
      </div>
    </dialog>`;
}

// ---------------------------------------------------------------------------------------------
// Toasts

let toasts = [];
let nextToastId = 1;
const toastListeners = new Set();

function setToasts(list) {
  toasts = list;
  toastListeners.forEach((fn) => fn(toasts));
}

function dismissToast(id) {
  setToasts(toasts.filter((t) => t.id !== id));
}

/**
 * Shows a short notice. `kind` is "success", "info" or "error"; errors stay longer because
 * they usually need reading twice.
 */
export function notify(text, kind = 'info') {
  const id = nextToastId++;
  setToasts([...toasts, { id, text, kind }]);
  setTimeout(() => dismissToast(id), kind === 'error' ? 10000 : 5000);
}

/** The live region that shows `notify` messages; the shell mounts it once. */
export function Toasts() {
  const [list, setList] = useState(toasts);
  useEffect(() => {
    toastListeners.add(setList);
    return () => toastListeners.delete(setList);
  }, []);
  // The container is always in the page so screen readers announce what is added to it.
  return html`
    <div class="toasts" aria-live="polite">
      ${list.map((t) => html`
        <div key=${t.id} class=${`toast toast-${t.kind}`} role="status" data-test="toast">
          <span class="toast-text">${t.text}</span>
          <button type="button" class="toast-close" aria-label="Dismiss notice" onClick=${() => dismissToast(t.id)}>×</button>
        </div>`)}
    </div>`;
}

// ---------------------------------------------------------------------------------------------
// Time

/** "5 min ago", "in 3 days", "just now" for an ISO timestamp. */
export function relTime(iso) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  const seconds = Math.round((t - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  const units = [
    ['year', 365 * 86400], ['month', 30 * 86400], ['day', 86400], ['h', 3600], ['min', 60],
  ];
  for (const [unit, size] of units) {
    if (abs >= size * 0.95 || unit === 'min') {
      const n = Math.max(1, Math.round(abs / size));
      const label = unit === 'h' || unit === 'min' ? `${n} ${unit}` : `${n} ${unit}${n === 1 ? '' : 's'}`;
      return seconds < 0 ? `${label} ago` : `in ${label}`;
    }
  }
  return '';
}

/** The local date and time of an ISO timestamp, as text ("2026-03-02 14:05"). */
export function localTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * A `<time>` element showing the local time, with the relative time ("5 min ago") as its
 * tooltip. Returns an element, so use it inside markup, not inside strings.
 */
export function fmtTime(iso) {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime=${iso} title=${relTime(iso)}>${localTime(iso)}</time>`;
}

// ---------------------------------------------------------------------------------------------
// Badges, errors, loading, empty states

/**
 * A small label. `kind` picks the colour: expired, expiring, permanent, on, off, warn, danger,
 * info, neutral. `test` sets `data-test` when a test needs to find it.
 */
export function Badge({ kind = 'neutral', test, title, children }) {
  return html`<span class=${`badge badge-${kind}`} data-test=${test} title=${title}>${children}</span>`;
}

/**
 * The validation `details` that belong to `prefix` or to anything under it
 * (`rules[0]` takes `rules[0]`, `rules[0].serve`, `rules[0].when[1]`, but not `rules[01]`).
 * With no prefix, all of them.
 */
export function errorsFor(details, prefix) {
  if (!Array.isArray(details)) return [];
  if (!prefix) return details;
  return details.filter((d) => {
    const p = d.path || '';
    return p === prefix || p.startsWith(prefix + '.') || p.startsWith(prefix + '[');
  });
}

/**
 * The messages of `errors` (`[{path, message}]`) shown under a field: those whose path is
 * exactly `path`, or all of them when no path is given.
 */
export function FieldError({ errors, path, id }) {
  const list = (errors || []).filter((e) => path === undefined || e.path === path);
  if (!list.length) return null;
  return html`
    <div class="field-error" data-test="field-error" id=${id} role="alert">
      ${list.map((e, i) => html`<div key=${i}>${e.message}</div>`)}
    </div>`;
}

/** A loading indicator with a text label for screen readers and slow eyes alike. */
export function Spinner({ label = 'Loading…' }) {
  return html`<div class="spinner" role="status"><span class="spinner-wheel" aria-hidden="true"></span><span>${label}</span></div>`;
}

/** What a page shows when it has nothing to list: a title, an explanation, maybe an action. */
export function EmptyState({ title, children, action }) {
  return html`
    <div class="empty-state">
      <h2 class="empty-title">${title}</h2>
      ${children ? html`<div class="empty-body">${children}</div>` : null}
      ${action ? html`<div class="empty-action">${action}</div>` : null}
    </div>`;
}

/** A failed load, with what went wrong and a retry button when `onRetry` is given. */
export function ErrorBox({ error, onRetry, title = 'Something went wrong' }) {
  const message = error && error.message ? error.message : String(error);
  return html`
    <div class="error-box" role="alert">
      <strong>${title}</strong>
      <p>${message}</p>
      ${onRetry ? html`<button type="button" class="btn" onClick=${onRetry}>Try again</button>` : null}
    </div>`;
}

// ---------------------------------------------------------------------------------------------
// Pages loaded on demand

const loadedModules = new Map();

/**
 * Renders `exportName` from a module loaded when first needed (`load` is `() => import(…)`,
 * written in the importing file so the path resolves from there). A module that fails to load
 * shows what failed instead of breaking the whole app.
 */
export function Lazy({ id, load, exportName, props }) {
  const [mod, setMod] = useState(() => loadedModules.get(id) || null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (mod) return undefined;
    let live = true;
    load().then(
      (m) => {
        loadedModules.set(id, m);
        if (live) setMod(m);
      },
      (e) => {
        if (live) setError(e);
      },
    );
    return () => {
      live = false;
    };
  }, [id]);

  if (error) {
    return html`<${ErrorBox} title="This page could not be loaded"
      error=${`${id} did not load (${error.message}). Reload the page; if this persists, this server's UI files are incomplete.`} />`;
  }
  if (!mod) return html`<${Spinner} />`;
  const Page = mod[exportName];
  if (typeof Page !== 'function') {
    return html`<${ErrorBox} title="This page could not be loaded" error=${`${id} has no ${exportName}.`} />`;
  }
  return html`<${Page} ...${props} />`;
}

// ---------------------------------------------------------------------------------------------
// Unsaved work

let leaveGuard = null;

/**
 * Registers what leaving the current page would lose: `{message, allows(path)}`, where
 * `allows` tells which route paths (arrays of segments) keep the work on screen. `null` clears it.
 * The shell asks before following a link elsewhere, and the browser asks before unloading.
 */
export function setLeaveGuard(guard) {
  leaveGuard = guard;
}

/** The guard registered by the page on screen, or null. */
export function getLeaveGuard() {
  return leaveGuard;
}

// ---------------------------------------------------------------------------------------------
// Focus that does not get lost

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * When the focused element disappears — the "Remove" button of the rule it removed, "Discard"
 * once nothing is left to discard — browsers drop focus to the page's start, and a keyboard user
 * has to find their place again. This keeps it nearby instead: on the first focusable element of
 * the closest container that is still on the page.
 */
export function keepFocusNearby() {
  let last = null;
  let ancestors = [];
  document.addEventListener('focusin', (e) => {
    last = e.target;
    ancestors = [];
    for (let n = last.parentElement; n; n = n.parentElement) ancestors.push(n);
  });
  new MutationObserver(() => {
    if (!last || last.isConnected) return;
    const active = document.activeElement;
    if (active && active !== document.body) return;
    last = null;
    // Only within the page's content: a whole screen replaced (signing in, say) starts afresh.
    const anchor = ancestors.find((n) => n.isConnected && n !== document.body);
    if (!anchor || !anchor.closest('main')) return;
    // The page itself was replaced (a link followed): focus the new page, not its first link.
    if (anchor.matches('main')) {
      anchor.focus({ preventScroll: true });
      return;
    }
    const target = anchor.matches(FOCUSABLE) ? anchor : anchor.querySelector(FOCUSABLE);
    if (target) target.focus();
  }).observe(document.body, { childList: true, subtree: true });
}

