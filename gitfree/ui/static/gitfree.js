// gitfree ui: the only script of the view (the Content-Security-Policy allows no other, and no inline one).
// It copies a command to the clipboard and keeps the history's two "compare" choices in order.
"use strict";

function copyText(button) {
  const text = button.getAttribute("data-copy") || "";
  const done = () => {
    button.textContent = "copied";
    button.classList.add("copied");
    setTimeout(() => { button.textContent = "copy"; button.classList.remove("copied"); }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectCode(button));
  } else {
    selectCode(button);
  }
}

function selectCode(button) {
  // Without a clipboard (plain http on another host), select the text for Ctrl+C.
  const code = button.parentElement.querySelector("code");
  if (!code) return;
  const range = document.createRange();
  range.selectNodeContents(code);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function keepCompareInOrder(form) {
  // The "old" side must be an older version than the "new" one: swap them if not.
  form.addEventListener("submit", () => {
    const old = form.querySelector("input[name=old]:checked");
    const neu = form.querySelector("input[name=new]:checked");
    if (old && neu && Number(old.value) > Number(neu.value)) {
      const a = old.value;
      old.value = neu.value;
      neu.value = a;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copyText(button));
  }
  for (const form of document.querySelectorAll("form.compare")) {
    keepCompareInOrder(form);
  }
});
