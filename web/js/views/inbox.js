// 承認待ち: what a supervisor (課長・班長) or administrator decides — releases of originals to
// the LGWAN side and outbound transfers to the internet side — each approved or rejected with
// a note; below, decided ones and my own requests.  Updated on open and by `notice` frames.

import { api, get } from '../api.js';
import { h, toast, uid } from '../dom.js';
import { fullWhen, parseDate } from '../format.js';
import { t } from '../i18n.js';
import { formatSize } from './attachments.js';

export class InboxView {
  constructor(app) {
    this.app = app;
    this.status = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite' }, t('room.loading'));
    this.pendingList = h('ul', { class: 'approvals pending-approvals', 'aria-labelledby': 'inbox-pending' });
    this.decidedList = h('ul', { class: 'approvals decided-approvals', 'aria-labelledby': 'inbox-decided' });
    this.mineList = h('ul', { class: 'approvals my-approvals', 'aria-labelledby': 'inbox-mine' });
    const decide = app.canDecide;
    this.el = h('section', { class: 'page inbox', 'aria-labelledby': 'inbox-title' },
      h('header', { class: 'page-header' },
        h('a', { class: 'btn ghost back', href: '#/', 'aria-label': t('room.back') }, '‹'),
        h('h1', { id: 'inbox-title' }, decide ? t('inbox.title') : t('inbox.title_mine'))),
      h('div', { class: 'page-body inbox-body' },
        this.status,
        decide ? h('section', { class: 'card' }, h('h2', { id: 'inbox-pending' }, t('inbox.pending')), this.pendingList) : null,
        decide ? h('section', { class: 'card' }, h('h2', { id: 'inbox-decided' }, t('inbox.decided')), this.decidedList) : null,
        h('section', { class: 'card' }, h('h2', { id: 'inbox-mine' }, t('inbox.mine')), this.mineList)));
  }

  async load() {
    let data;
    try {
      data = await get('/api/approvals?state=all');
    } catch (err) {
      this.status.textContent = err.text || t('error.unknown');
      return;
    }
    this.status.textContent = '';
    const pending = data.to_decide.filter((a) => a.state === 'pending');
    const decided = data.to_decide.filter((a) => a.state !== 'pending').slice(0, 50);
    this.fill(this.pendingList, pending, (a) => this.renderItem(a, true), t('inbox.none_pending'));
    this.fill(this.decidedList, decided, (a) => this.renderItem(a, false), t('inbox.none'));
    this.fill(this.mineList, data.mine, (a) => this.renderItem(a, false, true), t('inbox.none'));
    this.app.toDecide = pending.length;
    this.app.renderInboxBadge();
  }

  fill(list, items, render, empty) {
    list.replaceChildren(...(items.length ? items.map(render) : [h('li', { class: 'hint' }, empty)]));
  }

  onNotice() {
    this.load();
  }

  renderItem(a, open, mine = false) {
    const room = this.app.rooms.get(a.room_id);
    const created = parseDate(a.created_at);
    const decided = parseDate(a.decided_at);
    const noteId = uid('note');
    const note = open ? h('textarea', { id: noteId, class: 'decision-note', rows: 2, maxlength: 500 }) : null;
    const decide = async (approve, button) => {
      button.disabled = true;
      try {
        await api('POST', `/api/approvals/${a.id}/${approve ? 'approve' : 'reject'}`, { json: { note: note.value.trim() } });
        toast(approve ? t('inbox.approved_toast', { name: a.filename }) : t('inbox.rejected_toast', { name: a.filename }));
      } catch (err) {
        toast(err.text || t('error.unknown'), { error: true });
      }
      await this.load();
    };
    const approveButton = open ? h('button', { type: 'button', class: 'btn primary small', onclick: () => decide(true, approveButton) }, t('inbox.approve')) : null;
    const rejectButton = open ? h('button', { type: 'button', class: 'btn danger small', onclick: () => decide(false, rejectButton) }, t('inbox.reject')) : null;
    return h('li', { class: `approval state-${a.state}`, dataset: { approvalId: String(a.id), kind: a.kind, state: a.state } },
      h('div', { class: 'approval-head' },
        h('span', { class: `approval-kind ${a.kind}` }, t(`inbox.kind_${a.kind}`)),
        h('span', { class: `approval-state ${a.state}` }, t(`inbox.state_${a.state}`))),
      h('p', { class: 'approval-file' }, a.filename || '',
        a.size !== undefined ? h('span', { class: 'hint' }, ` (${formatSize(a.size)})`) : null),
      h('dl', { class: 'approval-facts' },
        mine ? null : h('div', null, h('dt', null, t('inbox.requester')), h('dd', { class: 'approval-requester' }, a.requester_name || this.app.userName(a.requester_id))),
        a.reason ? h('div', null, h('dt', null, t('inbox.reason')), h('dd', { class: 'approval-reason' }, a.reason)) : null,
        created ? h('div', null, h('dt', null, t('inbox.requested_at')), h('dd', null, fullWhen(created))) : null,
        room ? h('div', null, h('dt', null, t('inbox.room')), h('dd', null, h('a', { href: `#/room/${a.room_id}` }, this.app.roomTitle(room)))) : null,
        decided ? h('div', null, h('dt', null, t('inbox.decided_at')), h('dd', null, fullWhen(decided))) : null,
        a.note ? h('div', null, h('dt', null, t('inbox.note')), h('dd', { class: 'approval-note' }, a.note)) : null),
      open ? h('div', { class: 'approval-decide' },
        h('div', { class: 'field' }, h('label', { for: noteId }, t('inbox.note_label')), note),
        h('div', { class: 'row' }, approveButton, rejectButton)) : null);
  }
}
