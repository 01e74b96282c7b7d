// Desktop notifications for mentions and 1:1 messages while the tab is open.  Permission is
// asked only when the person presses the button; sound is off unless they turn it on.

const DISMISS_KEY = 'kakehashi.notify.dismissed';
const SOUND_KEY = 'kakehashi.notify.sound';

export function supported() {
  return 'Notification' in window && window.isSecureContext;
}

export function permission() {
  return supported() ? Notification.permission : 'unsupported';
}

export function shouldOffer() {
  return permission() === 'default' && localStorage.getItem(DISMISS_KEY) !== '1';
}

export function dismissOffer() {
  localStorage.setItem(DISMISS_KEY, '1');
}

export async function requestPermission() {
  if (!supported()) return 'unsupported';
  return Notification.requestPermission();
}

export function soundOn() {
  return localStorage.getItem(SOUND_KEY) === '1';
}

export function setSound(on) {
  localStorage.setItem(SOUND_KEY, on ? '1' : '0');
}

let audio = null;
function chime() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.35);
  } catch {
    // no audio: stay silent
  }
}

/** Show a notification (text only).  Returns the Notification or null. */
export function notify({ title, body, tag, onClick }) {
  if (permission() !== 'granted') return null;
  const n = new Notification(title, { body, tag, silent: !soundOn() });
  n.addEventListener('click', () => {
    window.focus();
    if (onClick) onClick();
    n.close();
  });
  if (soundOn()) chime();
  return n;
}
