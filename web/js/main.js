// Entry point: pick the language, find out whether we are signed in, show sign-in or the app.

import { csrfToken, currentSide, get, setSide } from './api.js';
import { App } from './app.js';
import { initI18n } from './i18n.js';
import { showLogin } from './views/login.js';

const root = document.getElementById('app');

async function enter(user, session = {}) {
  const app = new App(root, user, {
    side: session.side || currentSide(),
    restrictions: session.restrictions || null,
    onSignedOut: (notice) => showLogin(root, enter, { notice }),
  });
  window.kakehashi = app; // for people debugging in the console; holds no secrets
  await app.start();
}

async function boot() {
  await initI18n();
  try {
    setSide((await get('/api/auth/side')).side);
  } catch {
    // offline: keep the default; the sign-in screen reports the network error
  }
  let me = null;
  // Without the CSRF cookie there is no session either: skip the call that would only 401.
  if (csrfToken()) {
    try {
      me = await get('/api/auth/me');
    } catch {
      me = null;
    }
  }
  if (me?.user) await enter(me.user, me);
  else showLogin(root, enter);
}

boot();
