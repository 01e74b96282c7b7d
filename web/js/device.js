// This browser as a registered device (端末認証).  An administrator issues a one-time device
// code; registering with it gives a device id and a credential, which are kept in
// localStorage (one key per origin, so the LGWAN and internet ports never share one) and sent
// with every sign-in.  A browser can enforce none of the capabilities (no-save, no-screenshot,
// encrypted storage), so it honestly declares none: registering only makes it a known device.

const KEY = `kakehashi.device@${window.location.origin}`;
const MOBILE_UA = /Android|iPhone|iPad|iPod|Mobile/i;

export const CAPABILITIES = ['prevent_save', 'prevent_screenshot', 'encrypted_storage'];
// What a web page can promise; an app would list what it enforces.
export const BROWSER_CAPABILITIES = [];

/** `mobile_browser` on a phone or tablet (iPadOS says "Macintosh" but has a touch screen). */
export function guessPlatform() {
  const ua = navigator.userAgent || '';
  if (MOBILE_UA.test(ua)) return 'mobile_browser';
  if (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1) return 'mobile_browser';
  return 'browser';
}

export function storedDevice() {
  try {
    const data = JSON.parse(localStorage.getItem(KEY) || 'null');
    if (data && Number.isInteger(data.device_id) && typeof data.credential === 'string') return data;
  } catch {
    // a damaged entry is as good as none
  }
  return null;
}

export function storeDevice({ device_id: deviceId, credential, name, platform, capabilities }) {
  localStorage.setItem(KEY, JSON.stringify({
    device_id: deviceId, credential, name, platform, capabilities: capabilities || [],
  }));
}

export function forgetDevice() {
  localStorage.removeItem(KEY);
}

/** The part of the sign-in body that describes this client. */
export function signInClaim() {
  const device = storedDevice();
  if (!device) return { platform: guessPlatform(), capabilities: [] };
  return {
    platform: device.platform,
    capabilities: device.capabilities || [],
    device_id: device.device_id,
    device_credential: device.credential,
  };
}
