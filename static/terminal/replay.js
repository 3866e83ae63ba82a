// The replay page: asciinema-player on the session's asciicast v2 recording.
const el = document.getElementById("player");
window.AsciinemaPlayer.create(el.dataset.src, el, { fit: "width", idleTimeLimit: 2, terminalFontSize: "small" });
