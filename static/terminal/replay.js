// The replay page: asciinema-player on the session's asciicast v2 recording.
// fit "both" inside a box of fixed height: "width" blew a narrow (phone) recording up to a
// screen-high font. ?t=SECONDS (the review screens link each command so) starts there, paused.
const el = document.getElementById("player");
const at = Number(new URLSearchParams(location.search).get("t"));
const options = { fit: "both", idleTimeLimit: 2, terminalFontSize: "small" };
if (Number.isFinite(at) && at > 0) Object.assign(options, { startAt: at, preload: true });
window.AsciinemaPlayer.create(el.dataset.src, el, options);
