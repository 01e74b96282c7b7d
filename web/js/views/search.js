// Message search across my rooms (the server finds Japanese words inside sentences).

import { get } from '../api.js';
import { h } from '../dom.js';
import { fullWhen, messageNodes, parseDate } from '../format.js';
import { t } from '../i18n.js';

export class SearchView {
  constructor(app, query) {
    this.app = app;
    this.query = query;
    this.results = h('ol', { class: 'search-results', 'aria-live': 'polite' });
    this.status = h('p', { class: 'hint', role: 'status' }, t('search.searching'));
    this.el = h('section', { class: 'page search', 'aria-labelledby': 'search-title' },
      h('header', { class: 'page-header' },
        h('a', { class: 'btn ghost back', href: '#/', 'aria-label': t('room.back') }, '‹'),
        h('h1', { id: 'search-title' }, t('search.title', { q: query }))),
      h('div', { class: 'page-body' }, this.status, this.results));
  }

  async load() {
    if (this.app.searchInput && this.app.searchInput.value !== this.query) this.app.searchInput.value = this.query;
    let data;
    try {
      data = await get(`/api/search?q=${encodeURIComponent(this.query)}`);
    } catch (err) {
      this.status.textContent = err.text || t('error.unknown');
      return;
    }
    this.status.textContent = data.results.length ? t('search.count', { n: data.results.length }) : t('search.none');
    this.results.replaceChildren(...data.results.map((m) => {
      const room = this.app.rooms.get(m.room_id);
      const when = parseDate(m.created_at);
      return h('li', null, h('a', { class: 'search-hit', href: `#/room/${m.room_id}?seq=${m.seq}` },
        h('span', { class: 'hit-head' },
          h('span', { class: 'hit-room' }, room ? this.app.roomTitle(room) : t('room.untitled')),
          h('span', { class: 'hit-sender' }, m.sender_name || this.app.userName(m.sender_id)),
          when ? h('time', { datetime: when.toISOString() }, fullWhen(when)) : null),
        h('span', { class: 'hit-body' }, messageNodes(m.body, { highlight: this.query, links: false }))));
    }));
  }
}
