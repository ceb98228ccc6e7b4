// Browser demo of the relay: microphone → 24 kHz PCM16 → Realtime WebSocket → audio and
// transcript back, with the cost read from the relay's ledger. Vanilla JS, no build step.
'use strict';

(() => {
  const RATE = 24000;
  // 100 ms per input_audio_buffer.append: small enough to feel live, large enough that the
  // JSON/base64 overhead per frame stays negligible.
  const CHUNK_SAMPLES = RATE / 10;
  const CHUNK_MS = 100;
  // Client-side turn taking. The relay's sessions are minted with turn_detection off, so the
  // page decides when a turn ends; the same page then works with every upstream.
  const SPEECH_RMS = 0.015;
  const SPEECH_START_MS = 200;
  const SILENCE_END_MS = 700;
  const PREROLL_CHUNKS = 4;
  const MIN_COMMIT_MS = 100;

  const $ = (id) => document.getElementById(id);
  const ui = {
    key: $('api-key'),
    model: $('model'),
    voice: $('voice'),
    auto: $('auto-send'),
    start: $('start'),
    send: $('send'),
    stop: $('stop'),
    status: $('status'),
    level: $('level'),
    sessionCost: $('session-cost'),
    totalCost: $('total-cost'),
    refreshCost: $('refresh-cost'),
    stats: $('stats'),
    transcript: $('transcript'),
    transcriptEmpty: $('transcript-empty'),
  };

  /** Everything that belongs to one conversation; replaced on every Start. */
  let s = null;

  // ---------------------------------------------------------------------------------------------
  // Money: the relay reports decimal USD strings with nine decimals (exact nano-dollars).

  function usdToNanos(text) {
    const m = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(String(text).trim());
    if (!m) return null;
    const nanos = BigInt(m[2]) * 1000000000n + BigInt((m[3] || '').padEnd(9, '0'));
    return m[1] === '-' ? -nanos : nanos;
  }

  function nanosToUsd(nanos) {
    const neg = nanos < 0n;
    const abs = neg ? -nanos : nanos;
    const frac = String(abs % 1000000000n).padStart(9, '0');
    return `${neg ? '-' : ''}${abs / 1000000000n}.${frac}`;
  }

  /** Dollars for people: cents when large, more digits when a session costs fractions of a cent. */
  function displayUsd(usd) {
    const n = Number(usd);
    return `$${Math.abs(n) >= 1 ? n.toFixed(2) : n.toFixed(6)}`;
  }

  // ---------------------------------------------------------------------------------------------
  // UI helpers

  function setStatus(text, kind) {
    ui.status.textContent = text;
    ui.status.dataset.kind = kind || 'info';
  }

  function setRunning(running) {
    ui.start.disabled = running;
    ui.stop.disabled = !running;
    ui.send.disabled = !running;
    ui.key.disabled = running;
    ui.model.disabled = running;
    ui.voice.disabled = running;
  }

  function updateStats() {
    if (!s) return;
    ui.stats.dataset.appendedChunks = String(s.appendedChunks);
    ui.stats.dataset.playedChunks = String(s.playedChunks);
    ui.stats.dataset.responses = String(s.responses);
    const seconds = ((s.appendedChunks * CHUNK_MS) / 1000).toFixed(1);
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
    ui.stats.textContent = `Sent ${seconds} s of audio · played ${plural(s.playedChunks, 'audio chunk')} · ${plural(s.responses, 'response')}`;
  }

  /** One transcript line per conversation item, created where the item appears so order holds. */
  function line(itemId, who) {
    let li = s.lines.get(itemId);
    if (!li) {
      li = document.createElement('li');
      li.className = `turn ${who}`;
      const label = document.createElement('span');
      label.className = 'who';
      label.textContent = who === 'user' ? 'You' : 'Assistant';
      const text = document.createElement('span');
      text.className = 'text';
      li.append(label, text);
      ui.transcript.append(li);
      ui.transcriptEmpty.hidden = true;
      s.lines.set(itemId, li);
    }
    return li.querySelector('.text');
  }

  // ---------------------------------------------------------------------------------------------
  // Relay HTTP calls: the key is sent as a Bearer token to this same origin, nowhere else.

  async function relayFetch(path, key, init) {
    const res = await fetch(path, {
      ...init,
      headers: { authorization: `Bearer ${key}`, ...(init && init.body ? { 'content-type': 'application/json' } : {}) },
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) {
      const msg = body && body.error && body.error.message ? body.error.message : `HTTP ${res.status}`;
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function mintEphemeralKey(key, model, voice) {
    const session = {
      type: 'realtime',
      instructions: 'You are a friendly voice assistant. Keep answers short.',
      output_modalities: ['audio'],
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: RATE },
          transcription: { model: 'gpt-4o-mini-transcribe' },
          turn_detection: null,
        },
        output: { format: { type: 'audio/pcm', rate: RATE }, voice },
      },
    };
    if (model) session.model = model;
    // The session settings are locked into the key by the relay: the browser cannot change them.
    return relayFetch('/v1/realtime/client_secrets', key, {
      method: 'POST',
      body: JSON.stringify({ expires_after: { anchor: 'created_at', seconds: 60 }, session }),
    });
  }

  async function fetchTotalNanos(key) {
    const report = await relayFetch('/v1/usage', key, { method: 'GET' });
    return usdToNanos(report.total.cost_usd);
  }

  async function refreshCost() {
    const cur = s;
    if (!cur || cur.costUnavailable) return;
    try {
      const total = await fetchTotalNanos(cur.key);
      if (total === null) return;
      const totalUsd = nanosToUsd(total);
      ui.totalCost.dataset.costUsd = totalUsd;
      ui.totalCost.textContent = displayUsd(totalUsd);
      if (cur.baselineNanos !== null) {
        const sessionUsd = nanosToUsd(total - cur.baselineNanos);
        ui.sessionCost.dataset.costUsd = sessionUsd;
        ui.sessionCost.textContent = displayUsd(sessionUsd);
      }
    } catch (err) {
      if (err.status === 403) {
        cur.costUnavailable = true;
        ui.totalCost.textContent = 'needs the usage scope';
        ui.sessionCost.textContent = '—';
      }
    }
  }

  /** Ledger rows are written just after response.done is forwarded: read a moment later. */
  function scheduleCostRefresh(delayMs) {
    const cur = s;
    if (!cur) return;
    clearTimeout(cur.costTimer);
    cur.costTimer = setTimeout(() => void refreshCost(), delayMs);
  }

  // ---------------------------------------------------------------------------------------------
  // Audio in: worklet (or ScriptProcessor) → linear resampling to 24 kHz → PCM16 chunks.

  function createResampler(fromRate) {
    const step = fromRate / RATE;
    let pos = 0;
    let prev = 0;
    // Positions are in input samples relative to the current block; index -1 is the previous
    // block's last sample, so interpolation is continuous across blocks.
    return (input) => {
      const out = new Float32Array(Math.ceil((input.length - pos) / step) + 1);
      let n = 0;
      while (Math.floor(pos) + 1 < input.length) {
        const i = Math.floor(pos);
        const frac = pos - i;
        const a = i < 0 ? prev : input[i];
        out[n++] = a + (input[i + 1] - a) * frac;
        pos += step;
      }
      pos -= input.length;
      prev = input[input.length - 1];
      return out.subarray(0, n);
    };
  }

  function onMicSamples(block) {
    const cur = s;
    if (!cur || cur.stopped || block.length === 0) return;
    const resampled = cur.resample(block);
    for (let i = 0; i < resampled.length; i++) {
      const v = Math.max(-1, Math.min(1, resampled[i]));
      cur.pending[cur.pendingLength++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (cur.pendingLength === CHUNK_SAMPLES) {
        onChunk(cur, cur.pending);
        cur.pending = new Int16Array(CHUNK_SAMPLES);
        cur.pendingLength = 0;
      }
    }
  }

  function rmsOf(pcm) {
    let sum = 0;
    for (let i = 0; i < pcm.length; i++) sum += (pcm[i] / 32768) ** 2;
    return Math.sqrt(sum / pcm.length);
  }

  /** Every 100 ms of microphone audio: meter, client-side turn detection, streaming. */
  function onChunk(cur, pcm) {
    const level = rmsOf(pcm);
    ui.level.value = Math.min(1, level * 4);
    if (!ui.auto.checked) {
      append(cur, pcm);
      return;
    }
    const loud = level > SPEECH_RMS;
    cur.loudMs = loud ? cur.loudMs + CHUNK_MS : cur.speaking ? cur.loudMs : 0;
    cur.quietMs = loud ? 0 : cur.quietMs + CHUNK_MS;
    if (!cur.speaking) {
      // Keep a little audio from before speech was detected, so the first syllable is not cut.
      cur.preroll.push(pcm);
      if (cur.preroll.length > PREROLL_CHUNKS) cur.preroll.shift();
      if (cur.loudMs >= SPEECH_START_MS) {
        cur.speaking = true;
        setStatus('Listening…');
        for (const c of cur.preroll.splice(0)) append(cur, c);
      }
      return;
    }
    append(cur, pcm);
    if (cur.quietMs >= SILENCE_END_MS) {
      cur.speaking = false;
      cur.loudMs = 0;
      requestReply(cur);
    }
  }

  function base64Of(pcm) {
    const bytes = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  function sendEvent(cur, event) {
    if (cur.ws && cur.ws.readyState === WebSocket.OPEN) cur.ws.send(JSON.stringify(event));
  }

  function append(cur, pcm) {
    // PCM16 little-endian: Int16Array uses the platform's order, which is little-endian on every browser platform.
    sendEvent(cur, { type: 'input_audio_buffer.append', audio: base64Of(pcm) });
    cur.bufferedMs += CHUNK_MS;
    cur.appendedChunks++;
    updateStats();
  }

  /** Ends the user's turn: commit the buffer and ask for a response (after the current one, if any). */
  function requestReply(cur) {
    if (cur.bufferedMs < MIN_COMMIT_MS) {
      for (const c of cur.preroll.splice(0)) append(cur, c);
      if (cur.bufferedMs < MIN_COMMIT_MS) return;
    }
    if (cur.responseActive) {
      cur.replyPending = true;
      return;
    }
    sendEvent(cur, { type: 'input_audio_buffer.commit' });
    sendEvent(cur, { type: 'response.create' });
    cur.bufferedMs = 0;
    cur.responseActive = true;
    setStatus('Thinking…');
  }

  async function startMicrophone(cur) {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    cur.stream = stream;
    const ctx = cur.ctx;
    cur.resample = createResampler(ctx.sampleRate);
    cur.source = ctx.createMediaStreamSource(stream);
    // A silent sink keeps the capture node in the rendered graph without echoing the microphone.
    cur.sink = ctx.createGain();
    cur.sink.gain.value = 0;
    cur.sink.connect(ctx.destination);
    if (ctx.audioWorklet) {
      await ctx.audioWorklet.addModule('/demo/demo-worklet.js');
      cur.capture = new AudioWorkletNode(ctx, 'pcm-capture', { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
      cur.capture.port.onmessage = (e) => onMicSamples(e.data);
    } else {
      cur.capture = ctx.createScriptProcessor(2048, 1, 1);
      cur.capture.onaudioprocess = (e) => onMicSamples(e.inputBuffer.getChannelData(0).slice());
    }
    cur.source.connect(cur.capture);
    cur.capture.connect(cur.sink);
  }

  // ---------------------------------------------------------------------------------------------
  // Audio out: PCM16 24 kHz deltas scheduled back to back on the AudioContext clock.

  function play(cur, b64) {
    const bin = atob(b64);
    const samples = Math.floor(bin.length / 2);
    if (samples === 0) return;
    const buffer = cur.ctx.createBuffer(1, samples, RATE);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < samples; i++) {
      let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
      if (v >= 0x8000) v -= 0x10000;
      data[i] = v / 32768;
    }
    const node = cur.ctx.createBufferSource();
    node.buffer = buffer;
    node.connect(cur.ctx.destination);
    const at = Math.max(cur.ctx.currentTime + 0.05, cur.playhead);
    node.start(at);
    cur.playhead = at + buffer.duration;
    cur.playedChunks++;
    updateStats();
  }

  // ---------------------------------------------------------------------------------------------
  // Server events (GA names, and their beta equivalents for upstreams on the older dialect).

  function onServerEvent(cur, ev) {
    switch (ev.type) {
      case 'session.created':
        setStatus(ui.auto.checked ? 'Connected. Speak; a pause sends your turn.' : 'Connected. Speak, then press Send.', 'ok');
        break;
      case 'input_audio_buffer.committed':
        line(ev.item_id, 'user').textContent = '…';
        break;
      case 'conversation.item.input_audio_transcription.delta': {
        const t = line(ev.item_id, 'user');
        t.textContent = (t.textContent === '…' ? '' : t.textContent) + (ev.delta || '');
        break;
      }
      case 'conversation.item.input_audio_transcription.completed':
        line(ev.item_id, 'user').textContent = ev.transcript || '(no speech recognised)';
        scheduleCostRefresh(300);
        break;
      case 'conversation.item.input_audio_transcription.failed':
        line(ev.item_id, 'user').textContent = '(transcription failed)';
        break;
      case 'response.output_audio_transcript.delta':
      case 'response.audio_transcript.delta':
      case 'response.output_text.delta':
      case 'response.text.delta':
        line(ev.item_id, 'assistant').textContent += ev.delta || '';
        setStatus('Speaking…');
        break;
      case 'response.output_audio.delta':
      case 'response.audio.delta':
        play(cur, ev.delta);
        break;
      case 'response.done':
        cur.responses++;
        cur.responseActive = false;
        updateStats();
        setStatus(ev.response && ev.response.status !== 'completed' ? `Response ${ev.response.status}.` : 'Your turn.', 'ok');
        scheduleCostRefresh(300);
        if (cur.replyPending) {
          cur.replyPending = false;
          requestReply(cur);
        }
        break;
      case 'error':
        setStatus(`Error: ${(ev.error && ev.error.message) || 'unknown error'}`, 'error');
        if (ev.error && ev.error.code === 'input_audio_buffer_commit_empty') cur.responseActive = false;
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Start / stop

  async function start() {
    const key = ui.key.value.trim();
    if (!key) {
      setStatus('Enter a relay API key first.', 'error');
      ui.key.focus();
      return;
    }
    setRunning(true);
    setStatus('Getting an ephemeral key…');
    // Created inside the click handler: browsers only let a user gesture start audio.
    const ctx = new AudioContext();
    s = {
      key,
      ctx,
      ws: null,
      stream: null,
      source: null,
      capture: null,
      sink: null,
      resample: null,
      pending: new Int16Array(CHUNK_SAMPLES),
      pendingLength: 0,
      preroll: [],
      speaking: false,
      loudMs: 0,
      quietMs: 0,
      bufferedMs: 0,
      responseActive: false,
      replyPending: false,
      playhead: 0,
      appendedChunks: 0,
      playedChunks: 0,
      responses: 0,
      lines: new Map(),
      baselineNanos: null,
      costUnavailable: false,
      costTimer: null,
      stopped: false,
    };
    const cur = s;
    updateStats();
    try {
      await ctx.resume();
      const minted = await mintEphemeralKey(key, ui.model.value.trim(), ui.voice.value);
      const model = (minted.session && minted.session.model) || ui.model.value.trim();
      try {
        cur.baselineNanos = await fetchTotalNanos(key);
        ui.totalCost.dataset.costUsd = nanosToUsd(cur.baselineNanos);
        ui.totalCost.textContent = displayUsd(ui.totalCost.dataset.costUsd);
        ui.sessionCost.dataset.costUsd = '0.000000000';
        ui.sessionCost.textContent = displayUsd('0');
      } catch (err) {
        cur.costUnavailable = err.status === 403;
        ui.totalCost.textContent = cur.costUnavailable ? 'needs the usage scope' : '—';
      }
      setStatus('Connecting…');
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      const url = `${scheme}://${location.host}/v1/realtime?model=${encodeURIComponent(model)}`;
      // Browsers cannot set headers on a WebSocket: the key travels as a subprotocol, as OpenAI's own browser clients do.
      const ws = new WebSocket(url, ['realtime', `openai-insecure-api-key.${minted.value}`]);
      cur.ws = ws;
      ws.onmessage = (msg) => {
        let ev;
        try {
          ev = JSON.parse(msg.data);
        } catch {
          return;
        }
        if (s === cur) onServerEvent(cur, ev);
      };
      ws.onclose = (e) => {
        if (s !== cur || cur.stopped) return;
        stop(`Disconnected (${e.code}${e.reason ? `: ${e.reason}` : ''}).`, 'error');
      };
      await new Promise((resolve, reject) => {
        ws.addEventListener('open', resolve, { once: true });
        ws.addEventListener('error', () => reject(new Error('the relay refused the WebSocket')), { once: true });
      });
      await startMicrophone(cur);
    } catch (err) {
      if (s === cur) stop(`Could not start: ${err.message || err}`, 'error');
    }
  }

  function stop(message, kind) {
    const cur = s;
    if (!cur || cur.stopped) return;
    cur.stopped = true;
    if (cur.stream) for (const t of cur.stream.getTracks()) t.stop();
    if (cur.capture) cur.capture.disconnect();
    if (cur.source) cur.source.disconnect();
    if (cur.ws && cur.ws.readyState <= WebSocket.OPEN) cur.ws.close(1000, 'stopped by user');
    // Let queued speech finish before releasing the audio device.
    const tail = Math.max(0, cur.playhead - cur.ctx.currentTime);
    setTimeout(() => void cur.ctx.close(), tail * 1000 + 100);
    ui.level.value = 0;
    setRunning(false);
    setStatus(message || 'Stopped.', kind || 'info');
    // The relay bills what was still in flight when the socket closed: read the ledger again.
    scheduleCostRefresh(500);
    setTimeout(() => void refreshCost(), 1500);
  }

  ui.start.addEventListener('click', () => void start());
  ui.stop.addEventListener('click', () => stop());
  ui.send.addEventListener('click', () => {
    if (!s || s.stopped) return;
    s.speaking = false;
    s.loudMs = 0;
    requestReply(s);
  });
  ui.refreshCost.addEventListener('click', () => void refreshCost());
  ui.key.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !ui.start.disabled) void start();
  });
  window.addEventListener('pagehide', () => stop());
})();
