// The theme before the first paint: saved choice, else the system's. A
// classic (blocking) script of its own, so the page needs no inline script
// and its Content-Security-Policy can forbid them.
document.documentElement.dataset.theme = localStorage.getItem("spoor.theme")
  || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
