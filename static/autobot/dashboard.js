// The dashboard's "Getting started" card: shown until this user dismisses it in this browser.
const card = document.getElementById("getting-started");
const key = `autobot.dashboard.getting-started-dismissed.${card.dataset.user}`;
card.hidden = localStorage.getItem(key) === "1";
document.getElementById("getting-started-dismiss").addEventListener("click", () => {
  localStorage.setItem(key, "1");
  card.hidden = true;
});
