// Japanese first; English by the switch or the browser's language.  One language per screen:
// every string on screen comes from the same dictionary (server messages in the same language).

const STORAGE_KEY = 'kakehashi.lang';
export const LANGS = ['ja', 'en'];
let dict = {};
let current = 'ja';

export function preferredLang() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (LANGS.includes(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language || 'ja']) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGS.includes(base)) return base;
  }
  return 'ja';
}

export async function initI18n(lang = preferredLang()) {
  const response = await fetch(`/i18n/${lang}.json`, { credentials: 'same-origin' });
  dict = await response.json();
  current = lang;
  document.documentElement.lang = lang;
  document.title = dict['app.name'] || document.title;
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!LANGS.includes(next)) return;
  localStorage.setItem(STORAGE_KEY, next);
  // Reloading redraws every screen in the new language at once (the outbox is kept).
  window.location.reload();
}

/** t('rooms.unread', {n: 3}) → "未読 3件" */
export function t(key, vars) {
  let text = dict[key];
  if (text === undefined) {
    console.warn('missing i18n key', key);
    text = key;
  }
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return text;
}

/** The server sends every error in Japanese and English; show the one of this screen. */
export function serverText(error) {
  if (!error) return '';
  return current === 'ja' ? (error.message || error.message_en) : (error.message_en || error.message);
}
