// The /try phone. It performs the flow's actions the way a phone would (the JSON is described in
// ivr/telephony/browser.py) and sends the caller's keys, silences and voice back. It decides
// nothing about the call: every answer comes from the server's call flow.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("try-config").textContent);
  const T = JSON.parse(document.getElementById("try-texts").textContent);
  const $ = (id) => document.getElementById(id);
  const player = $("player");
  const KEYS = "0123456789*#";
  const FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹";
  const AR_DIGITS = "٠١٢٣٤٥٦٧٨٩";
  const DTMF = {
    1: [697, 1209], 2: [697, 1336], 3: [697, 1477],
    4: [770, 1209], 5: [770, 1336], 6: [770, 1477],
    7: [852, 1209], 8: [852, 1336], 9: [852, 1477],
    "*": [941, 1209], 0: [941, 1336], "#": [941, 1477],
  };

  let call = null; // {eventsUrl} while a call is on
  let waiting = null; // the gather or recording in progress: {key(k), cancel()}
  let playing = null; // the prompt being played: {interruptible, stop(how)}
  let audioContext = null;

  const faDigits = (text) => String(text).replace(/[0-9]/g, (d) => FA_DIGITS[d]);
  const asciiDigits = (text) =>
    String(text).replace(/[۰-۹٠-٩]/g, (d) => String(Math.max(FA_DIGITS.indexOf(d), AR_DIGITS.indexOf(d))));

  // --- the screen ------------------------------------------------------------------------

  const status = (text) => { $("status").textContent = text; };
  const showNow = (text) => { $("now").textContent = text; };
  const showEntered = (digits) => { $("entered").textContent = digits; };

  function countdown(seconds) {
    const element = $("countdown");
    element.hidden = seconds === null;
    if (seconds !== null) element.textContent = `${faDigits(seconds)} ${T.seconds}`;
  }

  function inCall(on) {
    $("call").disabled = on;
    $("hangup").disabled = !on;
    $("caller").disabled = on;
  }

  function note(text) {
    const line = document.createElement("li");
    line.className = "caller";
    line.textContent = text;
    $("transcript").append(line);
    line.scrollIntoView({ block: "nearest" });
  }

  function showTracking(tracking) {
    if (!tracking) return;
    const box = $("tracking");
    box.dataset.tracking = tracking;
    $("tracking-number").textContent = faDigits(tracking);
    box.hidden = false;
  }

  // --- sound -----------------------------------------------------------------------------

  function unlockAudio() {
    // Inside the click: phones only let a page play sound it started from a gesture.
    try {
      audioContext = audioContext || new AudioContext();
      audioContext.resume().catch(() => {});
    } catch (error) {
      audioContext = null;
    }
    player.src = config.unlock_url;
    player.play().catch(() => {});
  }

  function tone(frequencies, seconds, volume) {
    if (audioContext) {
      const gain = audioContext.createGain();
      gain.gain.value = volume;
      gain.connect(audioContext.destination);
      for (const frequency of frequencies) {
        const oscillator = audioContext.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start();
        oscillator.stop(audioContext.currentTime + seconds);
      }
    }
    // A timer, not the oscillator's end: a suspended audio context must not stall the call.
    return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }

  function playOne(url, interruptible) {
    return new Promise((resolve) => {
      let settled = false;
      const handle = {
        interruptible,
        stop(how) {
          player.pause();
          finish(how);
        },
      };
      function finish(how) {
        if (settled) return;
        settled = true;
        player.onended = null;
        player.onerror = null;
        if (playing === handle) playing = null;
        resolve(how);
      }
      playing = handle;
      player.onended = () => finish("ended");
      player.onerror = () => finish("failed");
      player.src = url;
      player.play().catch(() => finish("failed"));
    });
  }

  // Say prompts in order, each shown as a line of the transcript while it plays; a key stops
  // them when they belong to a gather, as on a phone.
  async function say(prompts, interruptible) {
    if (!prompts.length) return "ended";
    const line = document.createElement("li");
    const parts = prompts.map((prompt) => {
      const part = document.createElement("span");
      part.textContent = prompt.recording ? T.your_recording : prompt.text;
      part.dataset.prompt = prompt.recording ? "recording" : prompt.id;
      part.dataset.state = "pending";
      line.append(part, " ");
      return part;
    });
    $("transcript").append(line);
    line.scrollIntoView({ block: "nearest" });
    showNow(parts.map((part) => part.textContent).filter(Boolean).join(" "));
    status(T.playing);
    for (const [index, prompt] of prompts.entries()) {
      if (!call) return "hung up";
      parts[index].dataset.state = "playing";
      const how = await playOne(prompt.url, interruptible);
      parts[index].dataset.state = how;
      if (how === "interrupted") {
        for (const part of parts.slice(index + 1)) part.dataset.state = "skipped";
        return how;
      }
    }
    return "ended";
  }

  // --- what the flow asks for --------------------------------------------------------------

  function gather(action) {
    return new Promise((resolve) => {
      let digits = "";
      let timer = null;
      let done = false;
      const finish = (event) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        countdown(null);
        showEntered("");
        waiting = null;
        resolve(event);
      };
      // The phone's timeout: from the end of the prompts, and again after each key.
      const restart = () => {
        clearInterval(timer);
        let left = action.timeout_s;
        countdown(left);
        timer = setInterval(() => {
          left -= 1;
          if (left > 0) {
            countdown(left);
          } else {
            finish(digits ? { type: "digits", digits } : { type: "timeout" });
          }
        }, 1000);
      };
      waiting = {
        key(key) {
          if (playing && playing.interruptible) playing.stop("interrupted");
          if (action.finish_on_key && key === action.finish_on_key) {
            finish({ type: "digits", digits });
            return;
          }
          digits += key;
          showEntered(digits);
          if (digits.length >= action.max_digits) finish({ type: "digits", digits });
          else restart();
        },
        cancel: () => finish(null),
      };
      showEntered("");
      say(action.prompts, true).then(() => {
        if (!done && !digits) {
          status(T.press);
          restart();
        }
      });
    });
  }

  function record(action) {
    return new Promise((resolve) => {
      const panel = $("record-panel");
      const chooser = $("record-file");
      let stream = null;
      let recorder = null;
      let timer = null;
      let done = false;
      const quiet = () => {
        if (recorder && recorder.state !== "inactive") {
          recorder.onstop = null;
          recorder.stop();
        }
      };
      const finish = (event) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        countdown(null);
        waiting = null;
        panel.hidden = true;
        chooser.onchange = null;
        chooser.value = "";
        if (stream) for (const track of stream.getTracks()) track.stop();
        resolve(event);
      };
      let stop = () => finish({ type: "recording" }); // nothing recorded (yet)
      waiting = {
        key(key) {
          if (key === action.finish_on_key) stop();
        },
        cancel() {
          quiet();
          finish(null);
        },
      };
      chooser.onchange = () => {
        const chosen = chooser.files[0];
        if (!chosen) return;
        quiet();
        status(T.uploading);
        finish({ audio: chosen });
      };
      const start = async () => {
        if (action.beep) {
          status(T.beep);
          await tone([1000], 0.4, 0.15);
        }
        if (done) return;
        panel.hidden = false;
        try {
          const media = await navigator.mediaDevices.getUserMedia({ audio: true });
          if (done) {
            for (const track of media.getTracks()) track.stop();
            return;
          }
          stream = media;
          recorder = new MediaRecorder(stream);
          const chunks = [];
          recorder.ondataavailable = (event) => {
            if (event.data.size) chunks.push(event.data);
          };
          recorder.onstop = () => {
            status(T.uploading);
            finish({ audio: new Blob(chunks, { type: recorder.mimeType || "audio/webm" }) });
          };
          stop = () => {
            if (recorder.state !== "inactive") recorder.stop();
          };
          recorder.start(250);
          $("record-hint").textContent = T.recording;
          status(T.recording);
        } catch (error) {
          $("record-hint").textContent = T.no_mic; // no microphone, refused, or not https
          status(T.no_mic);
        }
        let left = action.max_s;
        countdown(left);
        timer = setInterval(() => {
          left -= 1;
          countdown(Math.max(left, 0));
          if (left <= 0) stop();
        }, 1000);
      };
      start();
    });
  }

  // Perform one answer of the flow; the caller's reply as an event, or null when it is over.
  async function perform(actions) {
    for (const action of actions) {
      if (!call) return null;
      switch (action.type) {
        case "play":
          await say(action.prompts, false);
          break;
        case "gather":
          return gather(action);
        case "record":
          return record(action);
        case "transfer":
          note(T.transferred);
          return null;
        default: // hangup
          return null;
      }
    }
    return null;
  }

  // --- the server ------------------------------------------------------------------------

  async function post(url, body, type) {
    const reply = await fetch(url, { method: "POST", headers: { "Content-Type": type }, body });
    if (!reply.ok) {
      const error = new Error(`HTTP ${reply.status}`);
      error.status = reply.status;
      throw error;
    }
    return reply.json();
  }

  const postJson = (url, data, keepalive = false) =>
    keepalive
      ? fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(data),
          keepalive: true,
        }).catch(() => {})
      : post(url, JSON.stringify(data), "application/json");

  function send(current, event) {
    if (event.audio) {
      note(`▸ ${T.your_recording}`);
      return post(current.eventsUrl, event.audio, event.audio.type || "application/octet-stream");
    }
    if (event.type === "digits") note(`▸ ${event.digits || "#"}`);
    if (event.type === "timeout") note(`▸ ${T.silence}`);
    return postJson(current.eventsUrl, event);
  }

  // --- the call --------------------------------------------------------------------------

  async function dial() {
    if (call) return;
    unlockAudio();
    $("transcript").replaceChildren();
    $("tracking").hidden = true;
    status(T.calling);
    inCall(true);
    const current = { eventsUrl: null };
    call = current;
    try {
      let reply = await postJson(config.calls_url, { caller: asciiDigits($("caller").value) });
      current.eventsUrl = reply.events_url;
      if (call !== current) {
        postJson(reply.events_url, { type: "hangup" }, true); // hung up while dialling
        return;
      }
      for (;;) {
        showTracking(reply.tracking);
        const event = await perform(reply.actions);
        if (call !== current) return;
        if (event === null) {
          over(reply);
          return;
        }
        reply = await send(current, event);
        if (call !== current) return;
      }
    } catch (error) {
      if (call === current) failed(error);
    }
  }

  function reset() {
    call = null;
    if (playing) playing.stop("interrupted");
    if (waiting) waiting.cancel();
    inCall(false);
    showNow("");
    showEntered("");
    countdown(null);
  }

  function over(reply) {
    const transferred = reply.actions.some((action) => action.type === "transfer");
    reset();
    status(transferred ? T.transferred : T.ended);
  }

  function failed(error) {
    reset();
    status(error.status === 429 ? T.too_many : error.status === 404 ? T.gone : T.error);
  }

  function hangUp() {
    const current = call;
    if (!current) return;
    reset();
    status(T.hung_up);
    if (current.eventsUrl) postJson(current.eventsUrl, { type: "hangup" }, true);
  }

  function press(key) {
    const button = document.querySelector(`.key[data-key="${CSS.escape(key)}"]`);
    if (button) {
      button.classList.add("pressed");
      setTimeout(() => button.classList.remove("pressed"), 150);
    }
    if (!call) return;
    tone(DTMF[key], 0.12, 0.08);
    if (waiting) waiting.key(key);
  }

  for (const button of document.querySelectorAll(".key")) {
    button.addEventListener("click", () => press(button.dataset.key));
  }
  $("call").addEventListener("click", dial);
  $("hangup").addEventListener("click", hangUp);
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey) return;
    const key = asciiDigits(event.key);
    if (key.length === 1 && KEYS.includes(key)) {
      event.preventDefault();
      press(key);
    }
  });
  window.addEventListener("pagehide", () => {
    if (call && call.eventsUrl) postJson(call.eventsUrl, { type: "hangup" }, true);
  });
})();
