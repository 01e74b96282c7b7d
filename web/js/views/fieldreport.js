// 現場報告 (field report) on a phone: photos taken or chosen on the spot, and — if the person
// agrees — the phone's current position (latitude, longitude, accuracy, time).  The photos
// are uploaded like any attachment (the sanitiser re-encodes them, so the camera's EXIF GPS is
// gone); the position is sent as data on the message.  No map: nothing is fetched from any
// other host (the LGWAN side cannot reach one).

import { h, uid } from '../dom.js';
import { t } from '../i18n.js';
import { coordinates, fileProblem, formatSize, uploadFile, MAX_FILES } from './attachments.js';

const GEO_TIMEOUT_MS = 20_000;

export class FieldReport {
  /** onSend(body, {attachments, location}) posts the message (through the outbox). */
  constructor({ roomId, onSend }) {
    this.roomId = roomId;
    this.onSend = onSend;
    this.photos = [];
    this.position = null;
    this.busy = false;
    this.build();
  }

  build() {
    const titleId = uid('field');
    const photoId = uid('photos');
    const noteId = uid('note');
    this.photoInput = h('input', {
      type: 'file', id: photoId, class: 'file-input', accept: 'image/*', capture: 'environment', multiple: true,
      onchange: () => { this.addPhotos([...this.photoInput.files]); this.photoInput.value = ''; },
    });
    this.photoList = h('ul', { class: 'field-photos', 'aria-label': t('field.photos') });
    this.photoError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.geoStatus = h('p', { class: 'geo-status', role: 'status', 'aria-live': 'polite' });
    this.geoRetry = h('button', { type: 'button', class: 'btn small', onclick: () => this.locate() }, t('field.locate_again'));
    this.shareBox = h('input', { type: 'checkbox', id: uid('share'), checked: true, disabled: true });
    this.note = h('textarea', { id: noteId, class: 'field-note', rows: 2, maxlength: 10000, placeholder: t('field.note_placeholder') });
    this.progress = h('div', { class: 'field-progress', role: 'status', 'aria-live': 'polite' });
    this.error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.sendButton = h('button', { type: 'button', class: 'btn primary', onclick: () => this.submit() }, t('field.send'));
    this.cancelButton = h('button', { type: 'button', class: 'btn', onclick: () => this.close() }, t('common.cancel'));
    this.dialog = h('dialog', { class: 'dialog field-dialog', 'aria-labelledby': titleId },
      h('div', { class: 'dialog-form' },
        h('h2', { id: titleId, class: 'dialog-title' }, t('field.title')),
        h('div', { class: 'dialog-body' },
          h('p', { class: 'hint' }, t('field.explain')),
          h('div', { class: 'field' },
            h('span', { class: 'label' }, t('field.photos')),
            h('div', { class: 'file-pick' },
              h('label', { for: photoId, class: 'btn take-photo' }, t('field.take_photo')),
              this.photoInput),
            this.photoList, this.photoError),
          h('div', { class: 'field' },
            h('span', { class: 'label' }, t('field.location')),
            this.geoStatus,
            h('div', { class: 'row' },
              h('span', { class: 'field checkbox share-location' }, this.shareBox, h('label', { for: this.shareBox.id }, t('field.share'))),
              this.geoRetry)),
          h('div', { class: 'field' }, h('label', { for: noteId }, t('field.note')), this.note),
          this.progress,
          this.error),
        h('div', { class: 'dialog-actions' }, this.cancelButton, this.sendButton)));
    this.dialog.addEventListener('close', () => this.dialog.remove());
    this.dialog.addEventListener('cancel', (e) => { if (this.busy) e.preventDefault(); });
  }

  open() {
    document.body.append(this.dialog);
    this.dialog.showModal();
    this.renderPhotos();
    this.locate();
  }

  close() {
    if (this.busy) return;
    this.dialog.close();
  }

  addPhotos(files) {
    const problems = [];
    for (const file of files) {
      const problem = fileProblem(file);
      if (problem) problems.push(problem);
      else if (this.photos.length >= MAX_FILES) problems.push(t('file.too_many', { n: MAX_FILES }));
      else this.photos.push({ key: uid('ph'), file, loaded: 0 });
    }
    this.photoError.hidden = !problems.length;
    this.photoError.textContent = problems.join(' ');
    this.renderPhotos();
  }

  renderPhotos() {
    this.photoList.replaceChildren(...this.photos.map((p) => h('li', { class: 'field-photo', dataset: { key: p.key } },
      h('span', { class: 'upload-name' }, p.file.name),
      h('span', { class: 'upload-size' }, formatSize(p.file.size)),
      h('progress', { class: 'upload-progress', max: String(p.file.size || 1), value: p.loaded, 'aria-label': t('composer.progress_label', { name: p.file.name }) }),
      this.busy ? null : h('button', {
        type: 'button', class: 'btn icon small', 'aria-label': t('composer.remove_file', { name: p.file.name }),
        onclick: () => { this.photos = this.photos.filter((x) => x !== p); this.renderPhotos(); },
      }, '×'))));
    if (!this.photos.length) this.photoList.append(h('li', { class: 'hint' }, t('field.no_photos')));
  }

  /** The current position, high accuracy, with a timeout; a refusal is answered politely. */
  locate() {
    this.position = null;
    this.shareBox.disabled = true;
    if (!('geolocation' in navigator)) {
      this.geoStatus.textContent = t('field.geo_unsupported');
      return;
    }
    this.geoStatus.textContent = t('field.locating');
    this.geoStatus.dataset.state = 'locating';
    this.geoRetry.disabled = true;
    navigator.geolocation.getCurrentPosition((pos) => {
      const at = new Date(pos.timestamp || Date.now());
      this.position = {
        lat: pos.coords.latitude,
        lng: pos.coords.longitude,
        accuracy_m: Math.round((pos.coords.accuracy || 0) * 10) / 10,
        taken_at: at.toISOString().replace('Z', '+00:00'),
      };
      this.shareBox.disabled = false;
      this.geoRetry.disabled = false;
      this.geoStatus.dataset.state = 'ok';
      this.geoStatus.textContent = `${coordinates(this.position)} ${t('location.accuracy', { m: Math.round(this.position.accuracy_m) })}`;
    }, (err) => {
      this.geoRetry.disabled = false;
      this.geoStatus.dataset.state = 'error';
      const key = { 1: 'field.geo_denied', 2: 'field.geo_unavailable', 3: 'field.geo_timeout' }[err.code] || 'field.geo_unavailable';
      this.geoStatus.textContent = t(key);
    }, { enableHighAccuracy: true, timeout: GEO_TIMEOUT_MS, maximumAge: 0 });
  }

  async submit() {
    if (this.busy) return;
    const location = this.position && this.shareBox.checked ? this.position : null;
    if (!this.photos.length && !location) {
      this.error.hidden = false;
      this.error.textContent = t('field.nothing');
      return;
    }
    this.error.hidden = true;
    this.busy = true;
    this.sendButton.disabled = true;
    this.cancelButton.disabled = true;
    this.renderPhotos();
    this.progress.textContent = t('composer.uploading');
    const attachments = [];
    try {
      for (const p of this.photos) {
        const { promise } = uploadFile(this.roomId, p.file, (loaded) => {
          p.loaded = loaded;
          const bar = this.photoList.querySelector(`[data-key="${p.key}"] progress`);
          if (bar) bar.value = loaded;
        });
        attachments.push(await promise);
      }
    } catch (err) {
      this.busy = false;
      this.sendButton.disabled = false;
      this.cancelButton.disabled = false;
      this.progress.textContent = '';
      this.error.hidden = false;
      this.error.textContent = `${t('composer.upload_failed')} ${err.text || ''}`;
      this.renderPhotos();
      return;
    }
    const body = this.note.value.trim() ? this.note.value : '';
    this.onSend(body, { attachments, location });
    this.busy = false;
    this.dialog.close();
  }
}
