// Presence with the member's side: 庁内 (connected on the LGWAN side), 在宅 (on the internet
// side) or offline.  Views say whom they show (`watch(ids)`); we ask `GET /api/presence` at
// once (a room switch) and then at most every 30 s, never while the tab is hidden.  Badges
// made by `badge(id)` are repainted in place wherever they are on the page.

import { get } from './api.js';
import { h } from './dom.js';
import { t } from './i18n.js';

export const PRESENCE_POLL_MS = 30_000;
const MAX_IDS = 500; // the server's limit per question

export function presenceState(sides) {
  if (!Array.isArray(sides)) return null;
  const lgwan = sides.includes('lgwan');
  const internet = sides.includes('internet');
  if (lgwan && internet) return 'both';
  if (lgwan) return 'lgwan';
  if (internet) return 'internet';
  return 'offline';
}

export class Presence {
  constructor() {
    this.wanted = [];
    this.known = new Map(); // user id → sides
    this.timer = null;
    this.lastAt = 0;
    this.stopped = false;
    this.onVisibility = () => {
      if (document.visibilityState === 'visible') this.schedule();
      else clearTimeout(this.timer);
    };
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /** The people on screen now (replacing the previous view's): asked about at once. */
  watch(ids) {
    this.wanted = [...new Set(ids)].filter((id) => Number.isInteger(id)).slice(0, MAX_IDS);
    clearTimeout(this.timer);
    if (this.wanted.length) this.poll();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisibility);
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.stopped || !this.wanted.length || document.visibilityState === 'hidden') return;
    const wait = Math.max(0, this.lastAt + PRESENCE_POLL_MS - Date.now());
    this.timer = setTimeout(() => this.poll(), wait);
  }

  async poll() {
    if (this.stopped || document.visibilityState === 'hidden' || !this.wanted.length) return;
    this.lastAt = Date.now();
    const asked = this.wanted;
    try {
      const data = await get(`/api/presence?user_ids=${asked.join(',')}`);
      for (const [id, sides] of Object.entries(data.presence || {})) this.known.set(Number(id), sides);
      this.paint();
    } catch {
      // offline or signed out: the next round asks again
    }
    if (asked === this.wanted) this.schedule();
  }

  state(userId) {
    return this.known.has(userId) ? presenceState(this.known.get(userId)) : null;
  }

  /** A small badge that shows (and keeps showing) where this person is connected. */
  badge(userId) {
    const el = h('span', { class: 'presence', dataset: { presenceUser: String(userId) } });
    this.paintOne(el);
    return el;
  }

  paintOne(el) {
    const state = this.state(Number(el.dataset.presenceUser));
    el.dataset.state = state || 'unknown';
    el.textContent = state ? t(`presence.${state}`) : '';
    el.title = state ? t(`presence.${state}_title`) : '';
    el.hidden = !state;
  }

  paint() {
    for (const el of document.querySelectorAll('[data-presence-user]')) this.paintOne(el);
  }
}
