// Start a conversation: the directory organised by department (部 → 課 → 係), a 1:1 room with
// one person or a group room with several.

import { api } from '../api.js';
import { h, toast } from '../dom.js';
import { t } from '../i18n.js';

export class DirectoryView {
  constructor(app) {
    this.app = app;
    this.selected = new Set();
    this.filterText = '';
    this.treeEl = h('div', { class: 'directory-tree' });
    this.countEl = h('span', { class: 'selected-count', 'aria-live': 'polite' });
    this.nameInput = h('input', { id: 'group-name', name: 'name', maxlength: 200, required: true, autocomplete: 'off' });
    this.errorEl = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.createButton = h('button', { type: 'submit', class: 'btn primary', disabled: true }, t('directory.create_group'));
    const filter = h('input', {
      type: 'search', id: 'directory-filter', autocomplete: 'off', placeholder: t('directory.filter_placeholder'),
      oninput: (e) => { this.filterText = e.target.value.trim().toLowerCase(); this.renderTree(); },
    });
    this.el = h('section', { class: 'page directory', 'aria-labelledby': 'directory-title' },
      h('header', { class: 'page-header' },
        h('a', { class: 'btn ghost back', href: '#/', 'aria-label': t('room.back') }, '‹'),
        h('h1', { id: 'directory-title' }, t('directory.title'))),
      h('div', { class: 'page-body' },
        h('p', { class: 'hint' }, t('directory.intro')),
        h('div', { class: 'field' }, h('label', { for: 'directory-filter' }, t('directory.filter')), filter),
        this.treeEl,
        h('form', { class: 'group-form', onsubmit: (e) => { e.preventDefault(); this.createGroup(); } },
          h('h2', null, t('directory.group_heading')),
          h('div', { class: 'field' }, h('label', { for: 'group-name' }, t('directory.group_name')), this.nameInput),
          this.countEl, this.errorEl, this.createButton)));
    this.renderTree();
    this.renderCount();
    // Where each person is connected (庁内 / 在宅 / offline), for the first 500 of the directory.
    app.presence.watch([...app.users.values()].filter((u) => u.id !== app.me.id && u.is_active !== false).map((u) => u.id));
  }

  matches(user) {
    const q = this.filterText;
    if (!q) return true;
    return [user.display_name, user.kana, user.login_id, user.title].some((v) => (v || '').toLowerCase().includes(q));
  }

  renderTree() {
    const users = [...this.app.users.values()].filter((u) => u.id !== this.app.me.id && u.is_active !== false && this.matches(u));
    const byDept = new Map();
    for (const u of users) {
      const key = u.department_id ?? 0;
      if (!byDept.has(key)) byDept.set(key, []);
      byDept.get(key).push(u);
    }
    const children = new Map();
    for (const d of this.app.departments) {
      const key = d.parent_id ?? 0;
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(d);
    }
    const count = (deptId) => (byDept.get(deptId)?.length || 0)
      + (children.get(deptId) || []).reduce((n, d) => n + count(d.id), 0);
    const renderDept = (dept, level) => {
      const total = count(dept.id);
      if (!total) return null;
      return h('details', { class: `dept level-${Math.min(level, 3)}`, open: true },
        h('summary', null, h('span', { class: 'dept-name' }, dept.name), ' ', h('span', { class: 'hint' }, t('directory.people', { n: total }))),
        this.renderPeople(byDept.get(dept.id) || []),
        (children.get(dept.id) || []).map((d) => renderDept(d, level + 1)));
    };
    const top = (children.get(0) || []).map((d) => renderDept(d, 1));
    const known = new Set(this.app.departments.map((d) => d.id));
    const loose = users.filter((u) => !u.department_id || !known.has(u.department_id));
    const parts = [...top];
    if (loose.length) {
      parts.push(h('details', { class: 'dept level-1', open: true },
        h('summary', null, h('span', { class: 'dept-name' }, t('directory.no_department')), ' ', h('span', { class: 'hint' }, t('directory.people', { n: loose.length }))),
        this.renderPeople(loose)));
    }
    if (!parts.some(Boolean)) parts.push(h('p', { class: 'hint' }, t('directory.nobody')));
    this.treeEl.replaceChildren(...parts.filter(Boolean));
  }

  renderPeople(users) {
    if (!users.length) return null;
    users.sort((a, b) => (a.kana || a.display_name).localeCompare(b.kana || b.display_name, 'ja'));
    return h('ul', { class: 'people-list' }, users.map((u) => {
      const id = `pick-${u.id}`;
      return h('li', { class: 'person' },
        h('input', {
          type: 'checkbox', id, checked: this.selected.has(u.id),
          onchange: (e) => { if (e.target.checked) this.selected.add(u.id); else this.selected.delete(u.id); this.renderCount(); },
        }),
        h('label', { for: id, class: 'person-label' },
          h('span', { class: 'person-name' }, u.display_name),
          u.title ? h('span', { class: 'person-title' }, u.title) : null,
          this.app.presence.badge(u.id)),
        h('button', {
          type: 'button', class: 'btn small', 'aria-label': t('directory.direct_with', { name: u.display_name }),
          onclick: () => this.openDirect(u),
        }, t('directory.direct')));
    }));
  }

  renderCount() {
    this.countEl.textContent = t('directory.selected', { n: this.selected.size });
    this.createButton.disabled = this.selected.size === 0;
  }

  async openDirect(user) {
    try {
      const room = await api('POST', '/api/rooms/direct', { json: { user_id: user.id } });
      await this.app.loadRooms();
      this.app.rt.seed(room.id, room.last_seq);
      window.location.hash = `#/room/${room.id}`;
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    }
  }

  async createGroup() {
    this.errorEl.hidden = true;
    const name = this.nameInput.value.trim();
    if (!name) {
      this.errorEl.textContent = t('directory.name_required');
      this.errorEl.hidden = false;
      this.nameInput.focus();
      return;
    }
    try {
      const room = await api('POST', '/api/rooms', { json: { name, member_ids: [...this.selected] } });
      await this.app.loadRooms();
      this.app.rt.seed(room.id, 0);
      window.location.hash = `#/room/${room.id}`;
    } catch (err) {
      this.errorEl.textContent = err.text || t('error.unknown');
      this.errorEl.hidden = false;
    }
  }
}
