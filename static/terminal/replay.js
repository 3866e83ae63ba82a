// The replay page: asciinema-player on the session's asciicast v2 recording.
// fit "both" inside a box of fixed height: "width" blew a narrow (phone) recording up to a
// screen-high font.
const el = document.getElementById("player");
window.AsciinemaPlayer.create(el.dataset.src, el, { fit: "both", idleTimeLimit: 2, terminalFontSize: "small" });
