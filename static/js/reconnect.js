// Reconnecting sockets for every page module: exponential backoff with jitter, so that a
// restarted server is not met by every open tab at the same instant.
//
//   const backoff = new Backoff();
//   socket.onopen = () => backoff.reset();
//   socket.onclose = () => backoff.schedule(connect);   // returns the delay in ms
export class Backoff {
  constructor({ base = 500, max = 10000 } = {}) {
    this.base = base;
    this.max = max;
    this.attempt = 0;
    this.timer = null;
  }

  reset() {
    this.attempt = 0;
  }

  // The next delay: between half and all of base·2^attempt, capped at max ("equal jitter").
  next() {
    const cap = Math.min(this.max, this.base * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(cap / 2 + Math.random() * (cap / 2));
  }

  schedule(fn) {
    this.cancel();
    const delay = this.next();
    this.timer = setTimeout(() => { this.timer = null; fn(); }, delay);
    return delay;
  }

  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}
