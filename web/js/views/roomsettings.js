// A room's settings and members: who is in it (with room administrators marked), adding people
// from the directory (name, kana, login ID, title or department), removing a member, renaming,
// archiving for everyone (room administrators), archiving for myself, and leaving.  The server
// decides every rule; a refusal is shown as its sentence.  Kept live by the RoomView, which calls
// refresh() after each membership or room event.

import { api } from '../api.js';
import { h, openDialog, toast, uid } from '../dom.js';
import { t } from '../i18n.js';

const MAX_RESULTS = 20;

/** A yes/no question in a modal; resolves true on yes. */
export async function confirmAction({ title, text, yes }) {
  const { closed } = openDialog({
    title,
    body: h('p', null, text),
    actions: [
      { label: t('common.cancel'), value: 'cancel', autofocus: true },
      { label: yes, value: 'yes', danger: true },
    ],
  });
  return (await closed) === 'yes';
}

export class RoomSettings {
  constructor(view) {
    this.view = view;
    this.app = view.app;
    this.query = '';
    this.titleId = uid('room-settings');
    this.errorEl = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.statusEl = h('p', { class: 'rs-status', role: 'status', 'aria-live': 'polite' });
    this.content = h('div', { class: 'room-settings-body' });
    this.dialog = h('dialog', { class: 'dialog room-settings', 'aria-labelledby': this.titleId },
      h('div', { class: 'dialog-form' },
        h('h2', { id: this.titleId, class: 'dialog-title' }, t('roomsettings.title')),
        this.errorEl, this.statusEl, this.content,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'btn primary', onclick: () => this.close() }, t('common.close')))));
    this.dialog.addEventListener('close', () => {
      this.dialog.remove();
      if (this.view.settings === this) this.view.settings = null;
      this.view.settingsButton?.focus();
    });
    this.dialog.addEventListener('click', (e) => { if (e.target === this.dialog) this.close(); });
  }

  open() {
    document.body.append(this.dialog);
    this.render();
    this.dialog.showModal();
    return this;
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  get room() {
    return this.view.room || {};
  }

  get isGroup() {
    return this.room.kind === 'group';
  }

  /** Room administrator (or an organisation administrator, as the server allows). */
  get canManage() {
    return this.isGroup && (this.room.my_role === 'admin' || this.app.isAdmin);
  }

  roleOf(member) {
    return member.role || this.view.roles.get(member.id) || (member.id === this.app.me.id ? this.room.my_role : null);
  }

  showError(err) {
    this.errorEl.textContent = err ? (err.text || t('error.unknown')) : '';
    this.errorEl.hidden = !err;
  }

  say(text) {
    this.statusEl.textContent = text;
  }

  /** Called by the view after the room was reloaded (someone joined, left, renamed …). */
  refresh() {
    if (!this.dialog.isConnected) return;
    const active = document.activeElement;
    const keep = active && this.dialog.contains(active) ? (active.id || active.dataset.key) : null;
    const typing = active?.matches?.('.rs-rename input') ? active.value : null; // a name being typed stays
    this.render();
    if (keep) {
      const again = this.dialog.querySelector(`[id="${CSS.escape(keep)}"]`) || this.dialog.querySelector(`[data-key="${CSS.escape(keep)}"]`);
      if (again && typing !== null) again.value = typing;
      again?.focus();
    }
  }

  render() {
    const parts = [];
    if (this.room.archived) parts.push(h('p', { class: 'notice archived-note' }, t('roomsettings.archived_note')));
    if (this.canManage) parts.push(this.renameForm());
    parts.push(this.memberList());
    if (this.canManage && !this.room.archived) parts.push(this.addSection());
    parts.push(this.actionsSection());
    this.content.replaceChildren(...parts);
  }

  renameForm() {
    const input = h('input', {
      id: `${this.titleId}-name`, name: 'name', maxlength: 100, required: true, autocomplete: 'off',
      value: this.room.name || '',
    });
    return h('form', {
      class: 'rs-section rs-rename',
      onsubmit: (e) => { e.preventDefault(); this.rename(input.value); },
    },
    h('label', { for: input.id, class: 'label' }, t('roomsettings.name')),
    h('div', { class: 'row' }, input,
      h('button', { type: 'submit', class: 'btn', dataset: { key: 'rename' } }, t('roomsettings.rename'))));
  }

  memberList() {
    const me = this.app.me.id;
    const members = [...this.view.members].sort((a, b) => (a.id === me ? -1 : b.id === me ? 1 : 0)
      || (this.roleOf(a) === 'admin' ? 0 : 1) - (this.roleOf(b) === 'admin' ? 0 : 1)
      || (a.display_name || '').localeCompare(b.display_name || '', 'ja'));
    const headId = `${this.titleId}-members`;
    return h('section', { class: 'rs-section', 'aria-labelledby': headId },
      h('h3', { id: headId }, t('room.members_title', { n: members.length })),
      h('ul', { class: 'people rs-members' }, members.map((m) => {
        const admin = this.roleOf(m) === 'admin';
        return h('li', { class: 'rs-member', dataset: { userId: String(m.id) } },
          h('span', { class: 'rs-member-name' }, m.display_name || this.app.userName(m.id),
            m.id === me ? h('span', { class: 'hint' }, ` ${t('room.you')}`) : null),
          admin ? h('span', { class: 'role-badge' }, t('roomsettings.role_admin')) : null,
          this.app.presence.badge(m.id),
          this.canManage && m.id !== me
            ? h('button', {
              type: 'button', class: 'btn small danger-ghost', dataset: { key: `remove-${m.id}` },
              'aria-label': t('roomsettings.remove_label', { name: m.display_name }),
              onclick: () => this.remove(m),
            }, t('roomsettings.remove'))
            : null);
      })));
  }

  addSection() {
    const inputId = `${this.titleId}-add`;
    const results = h('ul', { class: 'rs-results', 'aria-label': t('roomsettings.add_results') });
    const input = h('input', {
      type: 'search', id: inputId, autocomplete: 'off', value: this.query,
      placeholder: t('roomsettings.add_placeholder'),
      oninput: (e) => { this.query = e.target.value; this.renderResults(results); },
    });
    this.renderResults(results);
    return h('section', { class: 'rs-section rs-add' },
      h('label', { for: inputId, class: 'label' }, t('roomsettings.add')), input,
      h('p', { class: 'hint' }, t('roomsettings.add_hint')), results);
  }

  deptName(id) {
    return this.app.departments.find((d) => d.id === id)?.name || '';
  }

  candidates() {
    const q = this.query.trim().toLowerCase();
    if (!q) return [];
    const inRoom = new Set(this.view.members.map((m) => m.id));
    const found = [];
    for (const u of this.app.users.values()) {
      if (inRoom.has(u.id) || u.is_active === false) continue;
      const hay = [u.display_name, u.kana, u.login_id, u.title, this.deptName(u.department_id)];
      if (hay.some((v) => (v || '').toLowerCase().includes(q))) found.push(u);
    }
    found.sort((a, b) => (a.kana || a.display_name).localeCompare(b.kana || b.display_name, 'ja'));
    return found;
  }

  renderResults(list) {
    const q = this.query.trim();
    const found = this.candidates();
    const items = found.slice(0, MAX_RESULTS).map((u) => h('li', { class: 'rs-result' },
      h('span', { class: 'rs-result-name' }, h('span', { class: 'person-name' }, u.display_name),
        [this.deptName(u.department_id), u.title].filter(Boolean).length
          ? h('span', { class: 'person-title' }, [this.deptName(u.department_id), u.title].filter(Boolean).join(' ・ '))
          : null),
      h('button', {
        type: 'button', class: 'btn small', dataset: { key: `add-${u.id}` },
        'aria-label': t('roomsettings.add_label', { name: u.display_name }),
        onclick: () => this.add(u),
      }, t('roomsettings.add_button'))));
    if (q && !found.length) items.push(h('li', { class: 'hint' }, t('roomsettings.add_none')));
    if (found.length > MAX_RESULTS) items.push(h('li', { class: 'hint' }, t('roomsettings.add_more', { n: found.length - MAX_RESULTS })));
    list.replaceChildren(...items);
  }

  actionsSection() {
    const buttons = [];
    const mine = this.app.rooms.get(this.view.roomId) || this.app.archived?.get(this.view.roomId);
    if (mine?.archived_by_me) {
      buttons.push(h('button', { type: 'button', class: 'btn', dataset: { key: 'unarchive-me' }, onclick: () => this.personal('unarchive') }, t('roomsettings.unarchive_mine')));
    } else {
      buttons.push(h('button', { type: 'button', class: 'btn', dataset: { key: 'archive-me' }, onclick: () => this.personal('archive') }, t('roomsettings.archive_mine')));
    }
    if (this.canManage) {
      buttons.push(this.room.archived
        ? h('button', { type: 'button', class: 'btn', dataset: { key: 'unarchive-all' }, onclick: () => this.archiveAll(false) }, t('roomsettings.unarchive_all'))
        : h('button', { type: 'button', class: 'btn danger', dataset: { key: 'archive-all' }, onclick: () => this.archiveAll(true) }, t('roomsettings.archive_all')));
    }
    buttons.push(h('button', { type: 'button', class: 'btn danger', dataset: { key: 'leave' }, onclick: () => this.leave() }, t('roomsettings.leave')));
    return h('section', { class: 'rs-section rs-actions', 'aria-label': t('roomsettings.actions') },
      h('div', { class: 'row wrap' }, buttons),
      h('p', { class: 'hint' }, this.isGroup ? t('roomsettings.archive_hint') : t('roomsettings.direct_hint')));
  }

  // -- actions --
  async run(fn) {
    this.showError(null);
    try {
      await fn();
      return true;
    } catch (err) {
      this.showError(err);
      return false;
    }
  }

  async rename(value) {
    const name = value.trim();
    if (!name) {
      this.showError({ text: t('directory.name_required') });
      return;
    }
    const ok = await this.run(() => api('PATCH', `/api/rooms/${this.view.roomId}`, { json: { name } }));
    if (!ok) return;
    this.say(t('roomsettings.renamed', { name }));
    await this.view.reloadRoom();
    this.app.scheduleRoomsRefresh();
  }

  async add(user) {
    const ok = await this.run(() => api('POST', `/api/rooms/${this.view.roomId}/members`, { json: { user_ids: [user.id] } }));
    if (!ok) return;
    this.view.roles.set(user.id, 'member');
    this.query = '';
    this.say(t('roomsettings.added', { name: user.display_name }));
    await this.view.reloadRoom();
    this.dialog.querySelector('input[type="search"]')?.focus();
  }

  async remove(member) {
    const yes = await confirmAction({
      title: t('roomsettings.remove_title'),
      text: t('roomsettings.remove_confirm', { name: member.display_name }),
      yes: t('roomsettings.remove'),
    });
    if (!yes) return;
    const ok = await this.run(() => api('DELETE', `/api/rooms/${this.view.roomId}/members/${member.id}`));
    if (!ok) return;
    this.say(t('roomsettings.removed', { name: member.display_name }));
    await this.view.reloadRoom();
    this.dialog.querySelector('.rs-members button, input')?.focus();
  }

  async archiveAll(archived) {
    if (archived) {
      const yes = await confirmAction({
        title: t('roomsettings.archive_all'),
        text: t('roomsettings.archive_all_confirm', { name: this.app.roomTitle(this.room) }),
        yes: t('roomsettings.archive_all_yes'),
      });
      if (!yes) return;
    }
    const ok = await this.run(() => api('PATCH', `/api/rooms/${this.view.roomId}`, { json: { archived } }));
    if (!ok) return;
    this.say(archived ? t('roomsettings.archived_all') : t('roomsettings.unarchived_all'));
    await this.view.reloadRoom();
    this.app.scheduleRoomsRefresh();
  }

  async personal(action) {
    const ok = await this.run(() => this.app.bulk(action, [this.view.roomId]));
    if (!ok) return;
    toast(action === 'archive' ? t('rooms.archived_n', { n: 1 }) : t('rooms.unarchived_n', { n: 1 }));
    this.close();
  }

  async leave() {
    const yes = await confirmAction({
      title: t('roomsettings.leave'),
      text: t('roomsettings.leave_confirm', { name: this.app.roomTitle(this.app.rooms.get(this.view.roomId) || this.room) }),
      yes: t('roomsettings.leave_yes'),
    });
    if (!yes) return;
    const ok = await this.run(() => api('POST', `/api/rooms/${this.view.roomId}/leave`, { json: {} }));
    if (!ok) return;
    this.view.left = true;
    this.close();
    this.app.forgetRoom(this.view.roomId);
    toast(t('roomsettings.left'));
    window.location.hash = '#/';
  }
}
