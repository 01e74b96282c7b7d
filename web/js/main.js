// Entry point: pick the language, find out whether we are signed in, show sign-in or the app.

import { csrfToken, get } from './api.js';
import { App } from './app.js';
import { initI18n } from './i18n.js';
import { showLogin } from './views/login.js';

const root = document.getElementById('app');

async function enter(user) {
  const app = new App(root, user, {
    onSignedOut: (notice) => showLogin(root, enter, { notice }),
  });
  window.kakehashi = app; // for people debugging in the console; holds no secrets
  await app.start();
}

async function boot() {
  await initI18n();
  let user = null;
  // Without the CSRF cookie there is no session either: skip the call that would only 401.
  if (csrfToken()) {
    try {
      user = (await get('/api/auth/me')).user;
    } catch {
      user = null;
    }
  }
  if (user) await enter(user);
  else showLogin(root, enter);
}

boot();
