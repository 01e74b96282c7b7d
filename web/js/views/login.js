// Sign-in.  Errors (wrong password, lockout with its unlock time, deactivated account, no
// license for this side, an unregistered or revoked device, a policy this client cannot meet)
// are shown in the screen's language, as the server words them.  "この端末を登録" registers this
// browser with a one-time device code (see ../device.js); the stored device goes with every
// sign-in.

import { api, currentSide } from '../api.js';
import { BROWSER_CAPABILITIES, CAPABILITIES, forgetDevice, guessPlatform, signInClaim, storedDevice, storeDevice } from '../device.js';
import { clear, h } from '../dom.js';
import { lang, LANGS, setLang, t } from '../i18n.js';
import { timeOf } from '../format.js';

// Platforms a web page can be: the person confirms the guess.
const WEB_PLATFORMS = ['browser', 'mobile_browser'];

export function showLogin(root, onSignedIn, { notice = '' } = {}) {
  window.location.hash = '';
  const error = h('div', { class: 'form-error', role: 'alert', id: 'login-error', hidden: true });
  const loginId = h('input', { id: 'login-id', name: 'login_id', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn primary block' }, t('login.submit'));
  const deviceStatus = h('p', { class: 'device-status', id: 'device-status', role: 'status' });
  const showDevice = () => {
    const device = storedDevice();
    deviceStatus.textContent = device ? t('device.registered_as', { name: device.name || `#${device.device_id}` }) : '';
    deviceStatus.hidden = !device;
  };
  const form = h('form', {
    class: 'login-form', 'aria-describedby': 'login-error',
    onsubmit: async (event) => {
      event.preventDefault();
      error.hidden = true;
      submit.disabled = true;
      submit.textContent = t('login.submitting');
      try {
        const data = await api('POST', '/api/auth/login', {
          json: { login_id: loginId.value.trim(), password: password.value, ...signInClaim() },
        });
        password.value = '';
        await onSignedIn(data.user, data);
      } catch (err) {
        // The unlock time in this browser's time zone (the server words it in its own).
        const until = err.code === 'account_locked' && err.details.locked_until;
        let text = until ? t('login.locked', { time: timeOf(new Date(until)) }) : (err.text || t('error.unknown'));
        if (err.code === 'device_invalid' && storedDevice()) {
          // Revoked, or not this person's: keeping it would only fail again.
          forgetDevice();
          showDevice();
          text = `${text} ${t('device.forgotten')}`;
        }
        error.textContent = text;
        error.dataset.code = err.code;
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
  showDevice();
  clear(root);
  root.className = 'login-page';
  root.append(h('main', { class: 'login-card' },
    h('div', { class: 'login-lang' }, langSel),
    h('h1', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '⌒'), t('app.name')),
    h('p', { class: 'login-tagline' }, t('login.tagline')),
    h('p', { class: `side-badge side-${currentSide()}`, id: 'login-side' }, t('login.side', { side: t(`side.${currentSide()}`) })),
    notice ? h('p', { class: 'login-notice', role: 'status' }, notice) : null,
    form,
    deviceSection(deviceStatus, showDevice),
    h('p', { class: 'hint' }, t('login.help'))));
  loginId.focus();
}

/** "この端末を登録": a disclosure with the device code form. */
function deviceSection(deviceStatus, showDevice) {
  const panelId = 'device-register';
  const result = h('div', { class: 'device-result', 'aria-live': 'polite' });
  const code = h('input', {
    id: 'device-code', name: 'code', required: true, autocomplete: 'off', autocapitalize: 'characters',
    spellcheck: 'false', maxlength: 64, placeholder: 'XXXX-XXXX-XXXX-XXXX', class: 'mono', 'aria-describedby': 'device-code-hint',
  });
  const name = h('input', { id: 'device-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off', placeholder: t('device.name_placeholder') });
  const guessed = guessPlatform();
  const platform = h('select', { id: 'device-platform', name: 'platform', 'aria-describedby': 'device-platform-hint' },
    WEB_PLATFORMS.map((p) => h('option', { value: p, selected: p === guessed }, t(`platform.${p}`))));
  const send = h('button', { type: 'submit', class: 'btn primary' }, t('device.register_submit'));
  const panel = h('form', {
    id: panelId, class: 'device-form', hidden: true,
    onsubmit: async (e) => {
      e.preventDefault();
      send.disabled = true;
      result.replaceChildren();
      try {
        const data = await api('POST', '/api/devices/register', {
          json: { code: code.value.trim(), name: name.value.trim(), platform: platform.value, capabilities: BROWSER_CAPABILITIES },
        });
        storeDevice({
          device_id: data.device_id, credential: data.credential, name: data.device?.name || name.value.trim(),
          platform: data.device?.platform || platform.value, capabilities: data.device?.capabilities || [],
        });
        panel.reset();
        panel.hidden = true;
        toggle.setAttribute('aria-expanded', 'false');
        showDevice();
        result.append(h('p', { class: 'ok', role: 'status' }, t('device.registered_now')));
        document.getElementById('login-id')?.focus();
      } catch (err) {
        result.append(h('p', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
      } finally {
        send.disabled = false;
      }
    },
  },
  h('p', { class: 'hint' }, t('device.intro')),
  h('div', { class: 'field' }, h('label', { for: 'device-code' }, t('device.code')), code,
    h('span', { class: 'hint', id: 'device-code-hint' }, t('device.code_hint'))),
  h('div', { class: 'field' }, h('label', { for: 'device-name' }, t('device.name')), name),
  h('div', { class: 'field' }, h('label', { for: 'device-platform' }, t('device.platform')), platform,
    h('span', { class: 'hint', id: 'device-platform-hint' }, t('device.platform_hint'))),
  h('div', { class: 'field' }, h('span', { class: 'label' }, t('device.capabilities')),
    h('ul', { class: 'caps-list' }, CAPABILITIES.map((c) => h('li', null, t(`capability.${c}`), ': ', t('device.cap_not_declared')))),
    h('span', { class: 'hint' }, t('device.capabilities_hint'))),
  send);
  const toggle = h('button', {
    type: 'button', class: 'btn block', 'aria-expanded': 'false', 'aria-controls': panelId,
    onclick: () => {
      panel.hidden = !panel.hidden;
      toggle.setAttribute('aria-expanded', String(!panel.hidden));
      if (!panel.hidden) code.focus();
    },
  }, t('device.register'));
  return h('section', { class: 'device-section', 'aria-label': t('device.section') }, deviceStatus, toggle, panel, result);
}
