/*
 * Checkout phone verification: POST /auth/send-otp, then POST /auth/verify-otp (see API.md).
 * Plain script, no dependencies, no inline code: works under a strict Content-Security-Policy.
 *
 * API base URL: same origin, unless a `data-api-base` attribute is on the <script> tag, on
 * #otp-checkout or on <html>; or, only while the page itself is served from this machine
 * (localhost, 127.0.0.1), `?api=https://…` in the page URL. A hosted copy never takes the API from
 * its URL: a link could otherwise point it at someone else's server to collect numbers and codes.
 * On success the page fires `otp-verified` (bubbling CustomEvent on #otp-checkout) whose detail is
 * { phoneNumber, token, tokenExpiresAt }; the token itself is never shown or stored.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  var REQUEST_TIMEOUT_MS = 35000; // a send may take up to 3 provider attempts + backoff

  var $ = function (id) { return document.getElementById(id); };
  var root = $('otp-checkout');
  var el = {
    stepLabel: $('step-label'),
    title: $('title'),
    lead: $('lead'),
    sendForm: $('send-form'),
    phone: $('phone'),
    send: $('send-button'),
    verifyForm: $('verify-form'),
    sentNumber: $('sent-number'),
    codeExpiry: $('code-expiry'),
    otp: $('otp'),
    verify: $('verify-button'),
    resend: $('resend-button'),
    changeNumber: $('change-number'),
    success: $('success'),
    verifiedNumber: $('verified-number'),
    tokenExpiry: $('token-expiry'),
    restart: $('restart-button'),
    status: $('status'),
  };

  /* ---------------------------------------------------------------- API base */

  function configuredBase() {
    var loopback = /^(localhost|127\.0\.0\.1|\[::1\])$/.test(window.location.hostname);
    var fromQuery = loopback ? new URLSearchParams(window.location.search).get('api') : null;
    var fromAttr =
      (script && script.getAttribute('data-api-base')) ||
      (root && root.getAttribute('data-api-base')) ||
      document.documentElement.getAttribute('data-api-base');
    var raw = (fromQuery || fromAttr || '').trim();
    if (!raw) return '';
    try {
      var url = new URL(raw, window.location.href);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
      url.search = '';
      url.hash = '';
      return url.href.replace(/\/+$/, '');
    } catch (e) {
      return null;
    }
  }

  var apiBase = configuredBase();

  /* ---------------------------------------------------------------- state */

  var state = {
    phoneNumber: '',
    otpRequestId: '',
    codeDead: false,
  };

  /* ---------------------------------------------------------------- status region */

  function say(kind, text, code) {
    el.status.textContent = text;
    if (kind) el.status.setAttribute('data-kind', kind);
    else el.status.removeAttribute('data-kind');
    if (code) el.status.setAttribute('data-error-code', code);
    else el.status.removeAttribute('data-error-code');
  }

  /* ---------------------------------------------------------------- buttons: busy + countdown */

  function Control(button, label) {
    this.button = button;
    this.label = label;
    this.busyLabel = label;
    this.busy = false;
    this.blocked = false;
    this.deadline = 0;
    this.timer = 0;
  }
  Control.prototype.secondsLeft = function () {
    return Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
  };
  Control.prototype.render = function () {
    var left = this.secondsLeft();
    if (left === 0 && this.timer) {
      window.clearInterval(this.timer);
      this.timer = 0;
    }
    this.button.disabled = this.busy || this.blocked || left > 0;
    if (this.busy) this.button.setAttribute('aria-busy', 'true');
    else this.button.removeAttribute('aria-busy');
    var text = this.busy ? this.busyLabel : left > 0 ? this.label + ' in ' + left + ' s' : this.label;
    if (this.button.textContent !== text) this.button.textContent = text;
    this.button.setAttribute('data-countdown', String(left));
  };
  Control.prototype.countdown = function (seconds) {
    var s = Number(seconds);
    this.deadline = Number.isFinite(s) && s > 0 ? Date.now() + s * 1000 : 0;
    if (this.timer) window.clearInterval(this.timer);
    this.timer = this.deadline ? window.setInterval(this.render.bind(this), 250) : 0;
    this.render();
  };
  Control.prototype.setBusy = function (busy, busyLabel) {
    this.busy = busy;
    if (busyLabel) this.busyLabel = busyLabel;
    this.render();
  };
  Control.prototype.setBlocked = function (blocked) {
    this.blocked = blocked;
    this.render();
  };

  var sendCtl = new Control(el.send, 'Send code');
  var verifyCtl = new Control(el.verify, 'Verify');
  var resendCtl = new Control(el.resend, 'Resend code');

  /* ---------------------------------------------------------------- formatting */

  function formatTime(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso || '');
    var now = new Date();
    var sameDay = date.toDateString() === now.toDateString();
    var time = date.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit', second: '2-digit' });
    var text = sameDay ? time : date.toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' }) + ', ' + time;
    var minutes = Math.round((date.getTime() - Date.now()) / 60000);
    if (minutes >= 1 && minutes < 180) text += ' (in ' + minutes + ' min)';
    return text;
  }

  function setTime(node, iso) {
    node.setAttribute('datetime', String(iso || ''));
    node.textContent = formatTime(iso);
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  /* ---------------------------------------------------------------- HTTP */

  function randomKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    // Outside a secure context randomUUID is missing; getRandomValues still works.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  /** Resolves to { ok, status, data, retryAfter } or { network: true, timeout }. Never rejects. */
  function post(path, body, extraHeaders) {
    var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    Object.keys(extraHeaders || {}).forEach(function (k) { headers[k] = extraHeaders[k]; });
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
    return fetch(apiBase + path, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      signal: controller ? controller.signal : undefined,
    }).then(
      function (res) {
        return res.text().then(
          function (text) {
            var data = null;
            try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
            return { ok: res.ok, status: res.status, data: data, retryAfter: res.headers.get('Retry-After') };
          },
          function () { return { network: true, timeout: false }; }
        );
      },
      function (err) {
        return { network: true, timeout: !!(err && err.name === 'AbortError') };
      }
    ).then(function (result) {
      if (timer) window.clearTimeout(timer);
      return result;
    });
  }

  function retrySeconds(result) {
    var fromBody = result.data && Number(result.data.retryAfterSeconds);
    if (fromBody && fromBody > 0) return Math.ceil(fromBody);
    var fromHeader = Number(result.retryAfter);
    if (fromHeader && fromHeader > 0) return Math.ceil(fromHeader);
    return 0;
  }

  /** A sentence for a person, for every error code of API.md (and for a failed connection). */
  function describeError(result, context) {
    if (result.network) {
      return result.timeout
        ? 'The service did not answer in time. Check your connection and try again.'
        : 'Could not reach the service. Check your internet connection and try again.';
    }
    var data = result.data || {};
    var code = typeof data.error === 'string' ? data.error : '';
    var wait = retrySeconds(result);
    switch (code) {
      case 'invalid_request':
        return context === 'verify'
          ? 'That code could not be checked. Enter the digits from the SMS and try again.'
          : 'That request was not accepted. Check the number and try again.';
      case 'invalid_phone_number':
        return 'That does not look like a mobile number. Enter it in international format, e.g. +919876543210.';
      case 'country_not_allowed':
        return 'Sorry, we cannot send codes to numbers in that country. Please use another mobile number.';
      case 'challenge_failed':
        return 'Please confirm you are not a robot, then press the button again.';
      case 'payload_too_large':
        return 'What you entered is too long. Please check it and try again.';
      case 'unsupported_media_type':
        return 'The request was sent in a format the service does not accept. Please reload the page and try again.';
      case 'idempotency_conflict':
        return 'That request clashed with an earlier one. Please press the button again.';
      case 'rate_limited':
        return 'Too many codes were requested. ' + (wait ? 'Try again in ' + wait + ' s.' : 'Please try again later.');
      case 'invalid_code': {
        var left = Number(data.attemptsRemaining);
        return 'That code is not correct.' + (left > 0 ? ' ' + plural(left, 'attempt', 'attempts') + ' remaining.' : ' Please try again.');
      }
      case 'too_many_attempts':
        return 'Too many wrong codes: this code no longer works. Request a new code.';
      case 'otp_expired':
        return 'This code has expired or was already used. Request a new code.';
      case 'upstream_error':
        return 'We could not send the SMS right now. Please try again in a moment.';
      case 'service_unavailable':
        return 'The service is temporarily unavailable. ' + (wait ? 'Try again in ' + wait + ' s.' : 'Please try again in a few minutes.');
      case 'upstream_timeout':
        return 'The SMS service took too long to answer. If no code arrives, try again in a moment.';
      case 'internal_error':
        return 'Something went wrong on our side. Please try again.';
      default:
        if (typeof data.message === 'string' && data.message && data.message.length <= 300) return data.message;
        return 'Unexpected answer from the service (HTTP ' + result.status + '). Please try again.';
    }
  }

  function showError(result, context) {
    var code = result.network ? 'network_error' : (result.data && typeof result.data.error === 'string' && result.data.error) || 'http_' + result.status;
    say('error', describeError(result, context), code);
    return code;
  }

  /* ---------------------------------------------------------------- views */

  function showStep(step) {
    el.sendForm.hidden = step !== 'phone';
    el.verifyForm.hidden = step !== 'code';
    el.success.hidden = step !== 'done';
    el.stepLabel.textContent = step === 'done' ? 'Checkout · Done' : 'Checkout · Step ' + (step === 'phone' ? 1 : 2) + ' of 2';
    el.title.textContent = step === 'done' ? 'You are verified' : step === 'code' ? 'Enter your code' : 'Confirm your mobile number';
    el.lead.textContent =
      step === 'done'
        ? 'Your mobile number is confirmed. You can continue with your order.'
        : step === 'code'
          ? 'We sent a text message with a one-time code.'
          : 'We will text you a one-time code to finish your order.';
    root.setAttribute('data-step', step);
  }

  function normalisePhone(value) {
    var v = String(value || '').replace(/[\s\-().\u00a0]/g, '');
    if (v.indexOf('00') === 0) v = '+' + v.slice(2);
    return v;
  }

  function acceptSent(data) {
    state.otpRequestId = String(data.otpRequestId || '');
    state.codeDead = false;
    el.sentNumber.textContent = state.phoneNumber;
    setTime(el.codeExpiry, data.expiresAt);
    resendCtl.countdown(Number(data.resendAfterSeconds) || 0);
    verifyCtl.setBlocked(false);
    el.otp.value = '';
    el.otp.removeAttribute('aria-invalid');
  }

  function validResult(result, keys) {
    return result.ok && result.data && keys.every(function (k) { return result.data[k] !== undefined; });
  }

  function sendCode(fromResend) {
    var ctl = fromResend ? resendCtl : sendCtl;
    ctl.setBusy(true, 'Sending…');
    say('info', fromResend ? 'Sending a new code…' : 'Sending the code…');
    return post('/auth/send-otp', { phoneNumber: state.phoneNumber }, { 'Idempotency-Key': randomKey() }).then(function (result) {
      ctl.setBusy(false);
      if (validResult(result, ['otpRequestId', 'expiresAt'])) {
        acceptSent(result.data);
        showStep('code');
        say('success', (fromResend ? 'A new code was sent to ' : 'We sent a code to ') + state.phoneNumber + '.');
        el.otp.focus();
        return;
      }
      if (result.ok) result = { ok: false, status: result.status, data: null };
      var code = showError(result, 'send');
      if (code === 'rate_limited' || (code === 'service_unavailable' && retrySeconds(result))) ctl.countdown(retrySeconds(result));
      if (!fromResend) {
        if (code === 'invalid_phone_number' || code === 'country_not_allowed') {
          el.phone.setAttribute('aria-invalid', 'true');
          el.phone.focus();
        }
      }
    });
  }

  /* ---------------------------------------------------------------- events */

  el.sendForm.addEventListener('submit', function (event) {
    event.preventDefault();
    if (el.send.disabled) return;
    var phone = normalisePhone(el.phone.value);
    if (!/^\+[1-9]\d{6,14}$/.test(phone)) {
      el.phone.setAttribute('aria-invalid', 'true');
      say('error', 'Enter your mobile number in international format: + then the country code, e.g. +919876543210.', 'invalid_phone_number');
      el.phone.focus();
      return;
    }
    el.phone.removeAttribute('aria-invalid');
    el.phone.value = phone;
    state.phoneNumber = phone;
    sendCode(false);
  });

  el.verifyForm.addEventListener('submit', function (event) {
    event.preventDefault();
    if (el.verify.disabled) return;
    var otp = String(el.otp.value || '').replace(/\s/g, '');
    if (!/^\d{4,8}$/.test(otp)) {
      el.otp.setAttribute('aria-invalid', 'true');
      say('error', 'Enter the code from the SMS: 4 to 8 digits.', 'invalid_request');
      el.otp.focus();
      return;
    }
    el.otp.removeAttribute('aria-invalid');
    verifyCtl.setBusy(true, 'Checking…');
    say('info', 'Checking the code…');
    post('/auth/verify-otp', { otpRequestId: state.otpRequestId, otp: otp }).then(function (result) {
      verifyCtl.setBusy(false);
      if (validResult(result, ['token', 'tokenExpiresAt']) && result.data.verified === true) {
        el.verifiedNumber.textContent = state.phoneNumber;
        setTime(el.tokenExpiry, result.data.tokenExpiresAt);
        showStep('done');
        say('success', 'Your number ' + state.phoneNumber + ' is verified.');
        el.success.focus();
        root.dispatchEvent(
          new CustomEvent('otp-verified', {
            bubbles: true,
            detail: { phoneNumber: state.phoneNumber, token: result.data.token, tokenExpiresAt: result.data.tokenExpiresAt },
          })
        );
        return;
      }
      if (result.ok) result = { ok: false, status: result.status, data: null };
      var code = showError(result, 'verify');
      if (code === 'invalid_code' || code === 'invalid_request') {
        el.otp.setAttribute('aria-invalid', 'true');
        el.otp.select();
        el.otp.focus();
      } else if (code === 'too_many_attempts' || code === 'otp_expired') {
        state.codeDead = true;
        verifyCtl.setBlocked(true);
        el.otp.value = '';
        (el.resend.disabled ? el.otp : el.resend).focus();
      }
    });
  });

  el.resend.addEventListener('click', function () {
    if (el.resend.disabled || !state.phoneNumber) return;
    sendCode(true);
  });

  el.changeNumber.addEventListener('click', function () {
    state.otpRequestId = '';
    showStep('phone');
    say('', '');
    el.phone.focus();
  });

  el.restart.addEventListener('click', function () {
    state.otpRequestId = '';
    showStep('phone');
    say('', '');
    el.phone.focus();
  });

  el.phone.addEventListener('input', function () { el.phone.removeAttribute('aria-invalid'); });
  el.otp.addEventListener('input', function () {
    el.otp.removeAttribute('aria-invalid');
    var digits = el.otp.value.replace(/\D/g, '');
    if (digits !== el.otp.value) el.otp.value = digits.slice(0, 8);
  });

  /* ---------------------------------------------------------------- start */

  showStep('phone');
  sendCtl.render();
  if (apiBase === null) {
    apiBase = '';
    sendCtl.setBlocked(true);
    say('error', 'This page is misconfigured: the API address must be an http(s) URL.', 'configuration');
  }
  root.setAttribute('data-ready', 'true');
})();
