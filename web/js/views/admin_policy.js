// The organisation's device and mobile policy: one checkbox per rule, each with what it means.
// Saving asks first, because live sessions the new rules no longer admit end at once.

import { api, get } from '../api.js';
import { h, openDialog, toast } from '../dom.js';
import { t } from '../i18n.js';

export const POLICY_FIELDS = [
  'registered_device_lgwan',
  'registered_device_internet',
  'mobile_encrypted_storage',
  'mobile_save_allowed',
  'mobile_screenshot_allowed',
  'outbound_approval',
];

export class PolicyTab {
  constructor(app) {
    this.app = app;
    this.current = null;
    this.boxes = new Map();
    this.status = h('div', { class: 'form-result', role: 'status', 'aria-live': 'polite' });
    const fields = POLICY_FIELDS.map((name) => {
      const id = `policy-${name}`;
      const box = h('input', { type: 'checkbox', id, name, disabled: true, 'aria-describedby': `${id}-hint` });
      this.boxes.set(name, box);
      return h('div', { class: 'policy-item' },
        h('div', { class: 'field checkbox' }, box, h('label', { for: id }, t(`policy.${name}`))),
        h('p', { class: 'hint', id: `${id}-hint` }, t(`policy.${name}_hint`)));
    });
    this.save = h('button', { type: 'submit', class: 'btn primary', disabled: true }, t('policy.save'));
    const form = h('form', { class: 'policy-form', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      h('fieldset', { class: 'policy-fields' }, h('legend', null, t('policy.legend')), fields),
      this.save, this.status);
    this.el = h('div', { class: 'tab-panel' },
      h('section', { class: 'card', 'aria-labelledby': 'policy-title' },
        h('h2', { id: 'policy-title' }, t('policy.title')),
        h('p', { class: 'hint' }, t('policy.intro')),
        form));
  }

  async load() {
    try {
      this.show(await get('/api/admin/policy'));
    } catch (err) {
      this.status.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
    }
  }

  show(policy) {
    this.current = policy;
    for (const [name, box] of this.boxes) {
      box.checked = Boolean(policy[name]);
      box.disabled = false;
    }
    this.save.disabled = false;
  }

  async submit() {
    const changes = {};
    for (const [name, box] of this.boxes) if (box.checked !== Boolean(this.current?.[name])) changes[name] = box.checked;
    if (!Object.keys(changes).length) {
      this.status.replaceChildren(h('p', { class: 'hint' }, t('policy.unchanged')));
      return;
    }
    const { closed } = openDialog({
      title: t('policy.confirm_title'),
      body: h('div', null,
        h('ul', null, Object.entries(changes).map(([name, on]) => h('li', null, `${t(`policy.${name}`)}: ${on ? t('policy.on') : t('policy.off')}`))),
        h('p', null, t('policy.confirm'))),
      actions: [
        { label: t('common.cancel'), value: 'cancel', autofocus: true },
        { label: t('policy.save'), value: 'ok', primary: true },
      ],
    });
    if ((await closed) !== 'ok') return;
    this.save.disabled = true;
    try {
      this.show(await api('PUT', '/api/admin/policy', { json: changes }));
      this.status.replaceChildren(h('p', { class: 'ok' }, t('policy.saved')));
      toast(t('policy.saved'));
    } catch (err) {
      this.status.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
    } finally {
      this.save.disabled = false;
    }
  }
}
