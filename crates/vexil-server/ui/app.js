// The shell of vexil's admin UI: the session, the sign-in page, the header and navigation,
// and a hash router that mounts each page. Pages other than the flag pages are loaded on
// demand, so one that fails to load cannot take the rest down with it.

import { html, render, useState, useEffect, useRef, useCallback } from './vendor/preact-htm.js';
import { api, ApiError, session as fetchSession, signIn, signOut } from './api.js';
import { Toasts, notify, Spinner, ErrorBox, EmptyState, Lazy, confirmDialog, getLeaveGuard, setLeaveGuard, keepFocusNearby } from './ui.js';
import { FlagListPage, CreateFlagPage, FlagPage } from './flags.js';

const NAV = [
  { id: 'flags', href: '#/flags', label: 'Flags' },
  { id: 'segments', href: '#/segments', label: 'Segments' },
  { id: 'environments', href: '#/environments', label: 'Environments' },
  { id: 'audit', href: '#/audit', label: 'Audit log' },
  { id: 'playground', href: '#/playground', label: 'Playground' },
];

const NAME_KEY = 'vexil.signin-name';

/** `#/flags/x/settings?a=b` → `{path: ['flags', 'x', 'settings'], query: URLSearchParams}`. */
function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const pathPart = q === -1 ? raw : raw.slice(0, q);
  const path = pathPart.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return { path, query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)) };
}

/** The nav section a route belongs to. */
function sectionOf(path) {
  if (!path.length || path[0] === 'new') return 'flags';
  return path[0];
}

function titleOf(path) {
  if (path[0] === 'flags' && path[1]) return path[1];
  if (path[0] === 'new') return 'New flag';
  if (path[0] === 'segments' && path[1]) return `Segment ${path[1]}`;
  const nav = NAV.find((n) => n.id === sectionOf(path));
  return nav ? nav.label : 'Not found';
}

/**
 * The current route. A page with unsaved work registers a leave guard; following a link away
 * from it asks first, and puts the address back if the user stays.
 */
function useRoute() {
  const [route, setRoute] = useState(parseHash);
  const shown = useRef(location.hash);
  useEffect(() => {
    const onHashChange = async () => {
      const next = parseHash();
      const guard = getLeaveGuard();
      if (guard && !guard.allows(next.path)) {
        const target = location.hash;
        history.replaceState(null, '', shown.current || '#/flags');
        const leave = await confirmDialog(guard.message, {
          title: 'Unsaved changes', yes: 'Leave without saving', no: 'Stay on this page', danger: true,
        });
        if (!leave) return;
        setLeaveGuard(null);
        location.hash = target;
        return;
      }
      shown.current = location.hash;
      setRoute(next);
    };
    const onBeforeUnload = (e) => {
      if (getLeaveGuard()) {
        e.preventDefault();
        e.returnValue = '';
      }
    };
    window.addEventListener('hashchange', onHashChange);
    window.addEventListener('beforeunload', onBeforeUnload);
    // The address may have changed between the first render and now.
    if (location.hash !== shown.current) onHashChange();
    return () => {
      window.removeEventListener('hashchange', onHashChange);
      window.removeEventListener('beforeunload', onBeforeUnload);
    };
  }, []);
  return route;
}

function NotFound() {
  return html`<${EmptyState} title="Page not found" action=${html`<a class="btn" href="#/flags">Go to the flags</a>`}>
    <p>There is nothing at this address.</p><//>`;
}

/** Picks the page for a route. */
function Page({ route, environments, reloadEnvironments }) {
  const [a, b, c, ...more] = route.path;
  const lazy = (id, load, exportName, props) => html`<${Lazy} key=${`${id}:${route.path.join('/')}`} id=${id} load=${load}
    exportName=${exportName} props=${props} />`;
  switch (a) {
    case undefined:
    case 'flags':
      if (!b) return html`<${FlagListPage} route=${route} environments=${environments} />`;
      if (more.length || (c !== undefined && c !== 'settings' && c !== 'history')) return html`<${NotFound} />`;
      return html`<${FlagPage} key=${b} flagKey=${b} tab=${c || 'targeting'} environments=${environments} />`;
    case 'new':
      return b ? html`<${NotFound} />` : html`<${CreateFlagPage} />`;
    case 'segments':
      if (c) return html`<${NotFound} />`;
      return b
        ? lazy('segments.js', () => import('./segments.js'), 'SegmentPage', { route, name: b })
        : lazy('segments.js', () => import('./segments.js'), 'SegmentsPage', { route });
    case 'environments':
      return lazy('environments.js', () => import('./environments.js'), 'EnvironmentsPage', { route, onChange: reloadEnvironments });
    case 'audit':
      return lazy('audit.js', () => import('./audit.js'), 'AuditPage', { route, environments });
    case 'playground':
      return lazy('playground.js', () => import('./playground.js'), 'PlaygroundPage', { route, environments });
    default:
      return html`<${NotFound} />`;
  }
}

/** The sign-in form, as a page or (when a session ran out mid-work) over the app. */
function SignIn({ onSignedIn, expired }) {
  const [key, setKey] = useState('');
  const [name, setName] = useState(() => {
    try {
      return localStorage.getItem(NAME_KEY) || '';
    } catch {
      return '';
    }
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const keyRef = useRef(null);
  useEffect(() => keyRef.current.focus(), []);

  const submit = async (e) => {
    e.preventDefault();
    if (!key.trim()) {
      setError('Enter an admin key.');
      keyRef.current.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const data = await signIn(key.trim(), name);
      try {
        localStorage.setItem(NAME_KEY, name.trim());
      } catch {
        // Storage may be disabled; the name is only a convenience for next time.
      }
      onSignedIn(data);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError('That key was not accepted. Check it and try again.');
      else if (err instanceof ApiError && err.status === 403) setError(`${err.message || 'This key may not sign in here.'} The web UI needs an admin key.`);
      else setError(err.message);
      keyRef.current.focus();
    } finally {
      setBusy(false);
    }
  };

  return html`
    <div class="signin-card" role=${expired ? 'dialog' : undefined} aria-modal=${expired ? 'true' : undefined}
      aria-labelledby="signin-title">
      <div class="brand brand-large"><img src="/ui/favicon.svg" alt="" width="32" height="32" /> vexil</div>
      <h1 id="signin-title" class="signin-title">${expired ? 'Your session has ended' : 'Sign in'}</h1>
      <p class="muted">${expired
        ? 'Sign in again to carry on; what you were editing is still here.'
        : 'Use an admin key of this server.'}</p>
      <form onSubmit=${submit} novalidate>
        <div class="field">
          <label for="signin-key">Admin key</label>
          <input id="signin-key" ref=${keyRef} type="password" data-test="signin-key" autocomplete="current-password"
            required aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? 'signin-error' : undefined}
            value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="signin-name">Your name <span class="muted">(optional)</span></label>
          <input id="signin-name" type="text" data-test="signin-name" autocomplete="name" aria-describedby="signin-name-hint"
            value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
          <p class="hint" id="signin-name-hint">Recorded in the audit log with your changes.</p>
        </div>
        ${error ? html`<p class="form-error" id="signin-error" data-test="signin-error" role="alert">${error}</p>` : null}
        <button type="submit" class="btn btn-primary btn-block" data-test="signin-submit" disabled=${busy}>
          ${busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
      ${expired ? null : html`<p class="hint signin-help">On its first start, <code>vexil serve</code> prints an admin key (or uses <code>VEXIL_ADMIN_KEY</code>).</p>`}
    </div>`;
}

function Header({ user, page, section, onSignOut }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [page]);
  return html`
    <header class="topbar">
      <div class="topbar-inner">
        <a class="brand" href="#/flags"><img src="/ui/favicon.svg" alt="" width="24" height="24" /> vexil</a>
        <button type="button" class="btn btn-ghost menu-button" aria-expanded=${open ? 'true' : 'false'} aria-controls="topbar-menu"
          onClick=${() => setOpen(!open)}>Menu</button>
        <div id="topbar-menu" class=${`topbar-menu${open ? ' open' : ''}`}>
          <nav aria-label="Main">
            <ul class="nav-list">
              ${NAV.map((n) => html`<li key=${n.id}><a href=${n.href} data-test=${`nav-${n.id}`}
                aria-current=${section === n.id ? 'page' : undefined}>${n.label}</a></li>`)}
            </ul>
          </nav>
          <div class="account">
            <span class="whoami" data-test="whoami" title=${user.name ? `Signed in with the key "${user.name}"` : undefined}>${user.actor || user.name}</span>
            <button type="button" class="btn btn-small" data-test="signout" onClick=${onSignOut}>Sign out</button>
          </div>
        </div>
      </div>
    </header>`;
}

function Shell({ user, locked, onSignOut }) {
  const route = useRoute();
  const [environments, setEnvironments] = useState([]);
  const [envError, setEnvError] = useState(null);
  const mainRef = useRef(null);

  const reloadEnvironments = useCallback(async () => {
    try {
      const { data } = await api('GET', '/api/v1/environments');
      setEnvironments(data.environments.map((e) => e.name));
      setEnvError(null);
    } catch (e) {
      setEnvError(e);
    }
  }, []);
  useEffect(() => {
    reloadEnvironments();
  }, [reloadEnvironments]);

  // A new page (not a new tab of the same flag) starts at the top, with focus on it for
  // screen readers and keyboards.
  const page = route.path.slice(0, 2).join('/');
  const firstPage = useRef(true);
  useEffect(() => {
    document.title = `${titleOf(route.path)} · vexil`;
  }, [route]);
  useEffect(() => {
    if (firstPage.current) {
      firstPage.current = false;
      return;
    }
    window.scrollTo(0, 0);
    if (mainRef.current) mainRef.current.focus({ preventScroll: true });
  }, [page]);

  const skip = (e) => {
    e.preventDefault();
    mainRef.current.focus();
  };

  return html`
    <div class="shell" inert=${locked}>
      <a class="skip-link" href="#main" onClick=${skip}>Skip to content</a>
      <${Header} user=${user} page=${page} section=${sectionOf(route.path)} onSignOut=${onSignOut} />
      <main id="main" ref=${mainRef} tabindex="-1" class="main">
        ${user.read_only ? html`<p class="read-only-banner" data-test="read-only" role="note">
          This server serves a flag file read-only: browse, try evaluations in the playground and read
          the audit log here, but change flags by editing the file.</p>` : null}
        ${envError ? html`<${ErrorBox} error=${envError} onRetry=${reloadEnvironments}
          title="Could not load the environments; per-environment states are not shown" />` : null}
        <${Page} route=${route} environments=${environments} reloadEnvironments=${reloadEnvironments} />
      </main>
    </div>`;
}

function App() {
  const [phase, setPhase] = useState('checking'); // checking | failed | ready
  const [bootError, setBootError] = useState(null);
  const [user, setUser] = useState(null);
  // True when the session ran out while working: the app stays, with the sign-in over it.
  const [locked, setLocked] = useState(false);
  const userRef = useRef(null);
  userRef.current = user;

  const check = useCallback(async () => {
    setPhase('checking');
    try {
      setUser(await fetchSession());
      setPhase('ready');
    } catch (e) {
      setBootError(e);
      setPhase('failed');
    }
  }, []);
  useEffect(() => {
    check();
  }, [check]);

  useEffect(() => {
    const onSignedOut = () => {
      if (userRef.current) setLocked(true);
    };
    window.addEventListener('vexil:signed-out', onSignedOut);
    return () => window.removeEventListener('vexil:signed-out', onSignedOut);
  }, []);

  const onSignedIn = (data) => {
    if (locked) notify('Signed in again.', 'success');
    setUser(data);
    setLocked(false);
  };

  const onSignOut = async () => {
    const guard = getLeaveGuard();
    if (guard && !(await confirmDialog(guard.message, {
      title: 'Unsaved changes', yes: 'Sign out without saving', no: 'Stay signed in', danger: true,
    }))) return;
    try {
      await signOut();
    } catch (e) {
      notify(`The server did not confirm the sign-out (${e.message}); close the browser to be sure.`, 'error');
    }
    setLeaveGuard(null);
    setLocked(false);
    setUser(null);
  };

  let content;
  if (phase === 'checking') content = html`<div class="boot"><${Spinner} label="Connecting to vexil…" /></div>`;
  else if (phase === 'failed') {
    content = html`<div class="boot"><${ErrorBox} error=${bootError} onRetry=${check} title="Cannot reach the vexil server" /></div>`;
  } else if (!user) {
    content = html`<main id="main" class="signin-page"><${SignIn} onSignedIn=${onSignedIn} /></main>`;
  } else {
    content = html`
      <${Shell} user=${user} locked=${locked} onSignOut=${onSignOut} />
      ${locked ? html`<div class="signin-overlay"><${SignIn} expired onSignedIn=${onSignedIn} /></div>` : null}`;
  }
  return html`${content}<${Toasts} />`;
}

keepFocusNearby();
render(html`<${App} />`, document.getElementById('app'));
