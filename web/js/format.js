// Dates in Japanese style and message text turned into safe nodes (links and mentions).

import { h, externalLink } from './dom.js';
import { lang } from './i18n.js';

const locale = () => (lang() === 'ja' ? 'ja-JP' : 'en-GB');

export function parseDate(iso) {
  return iso ? new Date(iso) : null;
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth()
    && a.getDate() === b.getDate();
}

/** 14:05 */
export function timeOf(date) {
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(date);
}

/** 2026年3月5日(木) */
export function dayOf(date) {
  const opts = { year: 'numeric', month: 'long', day: 'numeric', weekday: 'short' };
  return new Intl.DateTimeFormat(locale(), opts).format(date);
}

/** Room list: today → 14:05, this year → 3/5, older → 2025/3/5 */
export function shortWhen(date, now = new Date()) {
  if (!date) return '';
  if (sameDay(date, now)) return timeOf(date);
  if (date.getFullYear() === now.getFullYear()) {
    return new Intl.DateTimeFormat(locale(), { month: 'numeric', day: 'numeric' }).format(date);
  }
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: 'numeric', day: 'numeric' })
    .format(date);
}

export function fullWhen(date) {
  const opts = { year: 'numeric', month: 'long', day: 'numeric', weekday: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(locale(), opts).format(date);
}

export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

// URLs (http/https only) and @mentions, as the server recognises them (chat/messages.py).
const TOKEN_RE = /(https?:\/\/[^\s<>"'　]+)|((?<![A-Za-z0-9._@-])@[A-Za-z0-9][A-Za-z0-9._@-]{0,63})/g;

/** Message text as nodes: text nodes, <a rel="noopener noreferrer"> and mention spans. */
export function messageNodes(text, { loginToName = () => null, myLogin = null, highlight = '', links = true } = {}) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(TOKEN_RE)) {
    if (match.index > last) out.push(...highlighted(text.slice(last, match.index), highlight));
    if (match[1]) {
      let url = match[1];
      const trail = url.match(/[).,。、!?！？]+$/);
      if (trail) url = url.slice(0, -trail[0].length);
      out.push(links ? externalLink(url, url) : url);
      if (trail) out.push(trail[0]);
    } else {
      const login = match[2].slice(1).replace(/\.+$/, '');
      const name = login === 'all' ? null : loginToName(login);
      const mine = login === 'all' || login === myLogin;
      out.push(h('span', { class: mine ? 'mention me' : 'mention', title: name || undefined }, match[2]));
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) out.push(...highlighted(text.slice(last), highlight));
  return out;
}

function highlighted(text, needle) {
  if (!needle) return [text];
  const out = [];
  const lower = text.toLowerCase();
  const n = needle.toLowerCase();
  let from = 0;
  for (let i = lower.indexOf(n); i !== -1; i = lower.indexOf(n, from)) {
    if (i > from) out.push(text.slice(from, i));
    out.push(h('mark', null, text.slice(i, i + n.length)));
    from = i + n.length;
  }
  if (from < text.length) out.push(text.slice(from));
  return out;
}

export function snippet(text, max = 60) {
  const one = String(text || '').replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** 2026/11/24 17:05 (or with seconds): tables of the admin screens. */
export function numericWhen(date, { seconds = false } = {}) {
  if (!date) return '';
  const opts = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' };
  if (seconds) opts.second = '2-digit';
  return new Intl.DateTimeFormat(locale(), opts).format(date);
}
