// Sign-in.  Errors (wrong password, lockout with its unlock time, deactivated account) are
// shown in the screen's language, as the server words them.

import { api } from '../api.js';
import { clear, h } from '../dom.js';
import { lang, LANGS, setLang, t } from '../i18n.js';
import { timeOf } from '../format.js';

export function showLogin(root, onSignedIn, { notice = '' } = {}) {
  window.location.hash = '';
  const error = h('div', { class: 'form-error', role: 'alert', id: 'login-error', hidden: true });
  const loginId = h('input', { id: 'login-id', name: 'login_id', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn primary block' }, t('login.submit'));
  const form = h('form', {
    class: 'login-form', 'aria-describedby': 'login-error',
    onsubmit: async (event) => {
      event.preventDefault();
      error.hidden = true;
      submit.disabled = true;
      submit.textContent = t('login.submitting');
      try {
        const data = await api('POST', '/api/auth/login', { json: { login_id: loginId.value.trim(), password: password.value } });
        password.value = '';
        await onSignedIn(data.user);
      } catch (err) {
        // The unlock time in this browser's time zone (the server words it in its own).
        const until = err.code === 'account_locked' && err.details.locked_until;
        error.textContent = until ? t('login.locked', { time: timeOf(new Date(until)) }) : (err.text || t('error.unknown'));
        error.hidden = false;
        password.select();
        submit.disabled = false;
        submit.textContent = t('login.submit');
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'login-id' }, t('login.login_id')), loginId),
  h('div', { class: 'field' }, h('label', { for: 'login-password' }, t('login.password')), password),
  error,
  submit);
  const langSel = h('select', { class: 'lang-select', 'aria-label': t('settings.language'), onchange: (e) => setLang(e.target.value) },
    LANGS.map((code) => h('option', { value: code, selected: code === lang() }, t(`lang.${code}`))));
  clear(root);
  root.className = 'login-page';
  root.append(h('main', { class: 'login-card' },
    h('div', { class: 'login-lang' }, langSel),
    h('h1', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '⌒'), t('app.name')),
    h('p', { class: 'login-tagline' }, t('login.tagline')),
    notice ? h('p', { class: 'login-notice', role: 'status' }, notice) : null,
    form,
    h('p', { class: 'hint' }, t('login.help'))));
  loginId.focus();
}
